/**
 * The consumer side: the local app's HTTP_PROXY and HTTPS_PROXY. The Host (absolute-form URL
 * or Host header) names the destination: a mesh service (a port in it travels on as
 * X-Forwarded-Port), or an external host an egress rule allows. Anything else is refused.
 */
import { IDENTITY_HEADER } from "../pipeline/build.ts";
import { errorResponse, MeshError } from "../pipeline/errors.ts";
import { makeEndpoint } from "../upstream/cluster.ts";
import { originForm, parseHost, setForwarded, splitHost, stripHopByHop } from "../upstream/http.ts";
import type { Ctx } from "../pipeline/types.ts";
import { newContext, runChain, VIA_HEADER, viaContains } from "./handle.ts";
import type { Runtime } from "./runtime.ts";
import type { ConnectHandler } from "./serve.ts";

function forbiddenError(what: string): MeshError {
  return new MeshError("forbidden", `${what} is neither a service of this mesh nor allowed by an egress rule (add it to egress, or set egress.allowAll)`);
}

/** The "chain" of a refused request: it still goes through runChain to be counted and logged. */
async function refuse(ctx: Ctx): Promise<void> {
  throw forbiddenError(`"${ctx.req.headers.get("host")}"`);
}

export function consumerHandler(rt: Runtime): (req: Request, clientAddress: string) => Promise<Response> {
  const mark = `${rt.id}/consumer`;
  return async function consumer(req, clientAddress) {
    if (req.method === "CONNECT") {
      // Only reached on the Bun.serve engine, which cannot tunnel: either CONNECT is switched
      // off, or ("auto") no egress rule could allow a tunnel, so this one is refused as any
      // unlisted host is.
      if (rt.pipeline.config.listen.connect === false) {
        return errorResponse(
          new MeshError("bad_request", "CONNECT is switched off on this listener (listen.connect: false)", { status: 405 }),
        );
      }
      const authority = req.headers.get("host") || req.url;
      return refuseConnect(rt, tunnelContext(authority, clientAddress, splitHost(authority)[0].toLowerCase()), authority, clientAddress);
    }
    if (req.method === "TRACE") {
      // Echoing the request back would expose credentials (cross-site tracing); nginx answers
      // 405 too. (Forwarded, the node engine also sent its head without the body and hung.)
      return errorResponse(new MeshError("bad_request", "TRACE is not forwarded by this sidecar", { status: 405 }));
    }
    const host = req.headers.get("host");
    if (!host) {
      return errorResponse(new MeshError("bad_request", "no destination: call http://<service>/<path> with this sidecar as HTTP_PROXY"));
    }
    const parsed = parseHost(host);
    if (!parsed) {
      return errorResponse(new MeshError("bad_request", `invalid Host "${host}": expected <service> or <service>:<port> with a port 1..65535`));
    }
    const [name, port] = parsed;
    const via = req.headers.get(VIA_HEADER);
    if (rt.selfAddresses.has(host.toLowerCase()) || viaContains(via, mark)) {
      return errorResponse(
        new MeshError("loop_detected", `the request names this sidecar itself (${host}); call http://<service>/<path> through it instead`),
      );
    }
    const pipeline = rt.pipeline;
    const service = name.toLowerCase();
    const egress = pipeline.egressTable.match(service, port ? Number(port) : undefined, "http");
    let inMesh = !egress && pipeline.isService(name);
    // A name neither known nor allowed may still be a service discovery finds on first use.
    // (With allowAll such a name leaves the mesh without asking: no registry call per request.)
    let lookupError: MeshError | undefined;
    if (!egress && !inMesh && !pipeline.egressTable.allowAll) {
      try {
        inMesh = await pipeline.discoverService(name);
      } catch (err) {
        // The registry could not say (unreachable): not the app's fault, so not a 403.
        if (!(err instanceof MeshError)) throw err;
        lookupError = err;
      }
    }

    const headers = stripHopByHop(new Headers(req.headers));
    setForwarded(headers, clientAddress, host, "http");
    // Bun's fetch would add Accept-Encoding on its own; the app asked for none, so ask for none.
    if (!headers.has("accept-encoding")) headers.set("accept-encoding", "identity");
    // A mesh service keeps the name as written (the router finds its configured spelling).
    const ctx = newContext(req, "consumer", clientAddress, headers, originForm(req.url), inMesh ? name : service);
    ctx.source = pipeline.source;
    if (lookupError) {
      const error = lookupError;
      return runChain(rt, ctx, async function registryUnavailable() {
        throw error;
      });
    }
    if (!egress && !inMesh && !pipeline.egressTable.allowAll) return runChain(rt, ctx, refuse);
    if (inMesh) {
      headers.set(VIA_HEADER, via ? `${via}, ${mark}` : mark);
      headers.set(IDENTITY_HEADER, pipeline.identity);
      if (port) headers.set("x-forwarded-port", port);
      ctx.port = port;
      return runChain(rt, ctx, pipeline.consumer);
    }
    // Leaving the mesh: no identity header for strangers. The egressEndpoint handler makes the
    // endpoint from the host and the port chosen here.
    ctx.port = egress ? String(egress.port) : (port ?? "80");
    ctx.route = egress ? { ...egress.route } : { name: "egress:allowAll" };
    return runChain(rt, ctx, pipeline.egress);
  };
}

/** Decides CONNECT tunnels (HTTPS_PROXY): allowed by an egress rule, or by allowAll. */
export function consumerConnect(rt: Runtime): ConnectHandler {
  return function connect(authority, clientAddress) {
    const [name, port] = splitHost(authority);
    const n = Number(port);
    if (!name || !port || !Number.isInteger(n) || n < 1 || n > 65535) {
      return errorResponse(new MeshError("bad_request", `CONNECT needs "host:port", got "${authority}"`));
    }
    const host = name.toLowerCase();
    const table = rt.pipeline.egressTable;
    const egress = table.match(host, n, "connect");
    const ctx = tunnelContext(authority, clientAddress, host);
    const address = egress ? egress.address : table.allowAll ? `${host.includes(":") ? `[${host}]` : host}:${n}` : undefined;
    if (address) {
      ctx.port = String(n);
      ctx.route = egress ? { ...egress.route } : { name: "egress:allowAll" };
      ctx.endpoint = makeEndpoint(address, { origin: "egress" });
      ctx.attempts = 1;
      return { address, settle: (res, error) => rt.telemetry.end(ctx, res, error, undefined) };
    }
    return refuseConnect(rt, ctx, authority, clientAddress);
  };
}

/**
 * Refuses a CONNECT no egress rule allows, on either engine: logged (refusals are rare and a
 * security event, not the hot path), counted and access-logged like any request.
 */
function refuseConnect(rt: Runtime, ctx: Ctx, authority: string, clientAddress: string): Response {
  console.warn(`mesher: refused CONNECT ${authority} from ${clientAddress}: no egress rule allows it`);
  const error = forbiddenError(`CONNECT to "${authority}"`);
  const res = errorResponse(error);
  rt.telemetry.end(ctx, res, error, undefined);
  return res;
}

/**
 * The context of a CONNECT, so a tunnel is counted (metrics, /stats) and logged as a request
 * "CONNECT host:port" is. One per tunnel, not per byte; tunnels are not traced (TLS inside).
 */
function tunnelContext(authority: string, clientAddress: string, host: string): Ctx {
  const req = new Request("http://connect.invalid/", { method: "CONNECT", headers: { host: authority } });
  return newContext(req, "consumer", clientAddress, new Headers(), authority, host);
}
