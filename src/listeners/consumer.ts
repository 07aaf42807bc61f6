/**
 * The consumer side: the local app's HTTP_PROXY. The Host (absolute-form URL or Host header)
 * names the destination service; a port in it travels on as X-Forwarded-Port.
 */
import { IDENTITY_HEADER } from "../pipeline/build.ts";
import { errorResponse, MeshError } from "../pipeline/errors.ts";
import { originForm, setForwarded, splitHost, stripHopByHop } from "../upstream/http.ts";
import { newContext, runChain, VIA_HEADER, viaContains } from "./handle.ts";
import type { Runtime } from "./runtime.ts";

export function consumerHandler(rt: Runtime): (req: Request, clientAddress: string) => Promise<Response> {
  const mark = `${rt.id}/consumer`;
  return async function consumer(req, clientAddress) {
    const host = req.headers.get("host");
    const [name, port] = host ? splitHost(host) : ["", undefined];
    if (!name) {
      return errorResponse(new MeshError("bad_request", "no destination: call http://<service>/<path> with this sidecar as HTTP_PROXY"));
    }
    const via = req.headers.get(VIA_HEADER);
    if (rt.selfAddresses.has(host!.toLowerCase()) || viaContains(via, mark)) {
      return errorResponse(
        new MeshError("loop_detected", `the request names this sidecar itself (${host}); call http://<service>/<path> through it instead`),
      );
    }
    const headers = stripHopByHop(new Headers(req.headers));
    setForwarded(headers, clientAddress, host, "http");
    headers.set(VIA_HEADER, via ? `${via}, ${mark}` : mark);
    headers.set(IDENTITY_HEADER, rt.pipeline.identity);
    if (port) headers.set("x-forwarded-port", port);
    // Bun's fetch would add Accept-Encoding on its own; the app asked for none, so ask for none.
    if (!headers.has("accept-encoding")) headers.set("accept-encoding", "identity");
    const ctx = newContext(req, "consumer", clientAddress, headers, originForm(req.url), name);
    ctx.port = port;
    ctx.source = { name: rt.pipeline.config.service.name, version: rt.pipeline.config.service.version, app: rt.pipeline.config.service.app, tags: rt.pipeline.config.service.tags };
    return runChain(rt, ctx, rt.pipeline.consumer);
  };
}
