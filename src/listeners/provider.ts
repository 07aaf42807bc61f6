/**
 * The provider side: requests from other sidecars, handed to the local app on 127.0.0.1.
 * The app's port is X-Forwarded-Port when it names one of the app's declared ports (or when
 * none are declared), else `service.ports.http`. Forwarding to any local port a remote peer
 * names would let the mesh reach ports the app never exposed.
 */
import type { ResolvedConfig } from "../config/schema.ts";
import { appPorts } from "../discovery/apps.ts";
import { IDENTITY_HEADER, parseIdentity } from "../pipeline/build.ts";
import { errorResponse, MeshError } from "../pipeline/errors.ts";
import { makeEndpoint, type Endpoint } from "../upstream/cluster.ts";
import { originForm, setForwarded, stripHopByHop } from "../upstream/http.ts";
import { newContext, runChain, VIA_HEADER, viaContains } from "./handle.ts";
import type { Runtime } from "./runtime.ts";
import type { Source } from "../pipeline/types.ts";

/** Chooses the local app port for a request; undefined when none can be known. */
/** Declared port lists by ports object: the config is frozen, so each is listed once, not per request. */
const declaredPorts = new WeakMap<Readonly<Record<string, number>>, number[]>();

export function localPort(config: ResolvedConfig, forwardedPort: string | null, forwardedHost: string | null = null): number | undefined {
  const ports = appPorts(config, forwardedHost); // per-host mode: the app the caller named
  let declared = declaredPorts.get(ports);
  if (!declared) declaredPorts.set(ports, (declared = Object.values(ports)));
  const asked = forwardedPort ? Number(forwardedPort) : NaN;
  if (Number.isInteger(asked) && asked > 0 && asked < 65536 && (declared.length === 0 || declared.includes(asked))) {
    return asked;
  }
  return ports.http ?? declared[0];
}

/**
 * Caller identities by their `x-cse-context` text: a sidecar hears from few callers, each
 * sending the same text every time, so each is parsed once. Bounded: emptied when full.
 */
const IDENTITY_CACHE_MAX = 1024;

export function identityCache(): (value: string | null) => Source | undefined {
  const seen = new Map<string, Source | undefined>();
  return (value) => {
    if (!value) return undefined;
    if (seen.has(value)) return seen.get(value);
    if (seen.size >= IDENTITY_CACHE_MAX) seen.clear();
    const source = parseIdentity(value);
    seen.set(value, source && Object.freeze(source));
    return source;
  };
}

export function providerHandler(rt: Runtime): (req: Request, clientAddress: string) => Promise<Response> {
  const mark = `${rt.id}/provider`;
  const locals = new Map<number, Endpoint>();
  const identity = identityCache();
  return async function provider(req, clientAddress) {
    const via = req.headers.get(VIA_HEADER);
    if (viaContains(via, mark)) {
      return errorResponse(new MeshError("loop_detected", "the request came back to the sidecar that forwarded it"));
    }
    const config = rt.pipeline.config;
    const port = localPort(config, req.headers.get("x-forwarded-port"), req.headers.get("x-forwarded-host"));
    if (port === undefined) {
      return errorResponse(
        new MeshError("bad_request", `no local port for ${config.service.name}: set service.ports.http (or --service-ports) or send X-Forwarded-Port`),
      );
    }
    let endpoint = locals.get(port);
    if (!endpoint) locals.set(port, (endpoint = makeEndpoint(`127.0.0.1:${port}`, { origin: "local" })));
    const headers = stripHopByHop(new Headers(req.headers));
    setForwarded(headers, clientAddress, req.headers.get("host"), "http");
    headers.delete(VIA_HEADER); // the app's own calls are new requests, not this one
    const ctx = newContext(req, "provider", clientAddress, headers, originForm(req.url), config.service.name);
    ctx.source = identity(req.headers.get(IDENTITY_HEADER));
    ctx.endpoint = endpoint;
    return runChain(rt, ctx, rt.pipeline.provider);
  };
}
