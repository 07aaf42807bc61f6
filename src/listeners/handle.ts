import { errorResponse, toMeshError, type MeshError } from "../pipeline/errors.ts";
import type { Ctx } from "../pipeline/types.ts";
import type { Runtime } from "./runtime.ts";
import { upgraderOf } from "./upgrade.ts";

/** Header listing the sidecar sides a request has passed through, to refuse loops. */
export const VIA_HEADER = "x-mesher-via";

/** Creates the per-request context. */
export function newContext(
  req: Request,
  direction: Ctx["direction"],
  clientAddress: string,
  headers: Headers,
  path: string,
  service: string,
): Ctx {
  return {
    req,
    direction,
    clientAddress,
    start: performance.now(),
    signal: req.signal,
    method: req.method,
    path,
    headers,
    body: req.body,
    service,
    attempts: 0,
    state: {},
    upgrade: upgraderOf(req),
  };
}

/**
 * Runs a chain and turns whatever it threw into the JSON error response (or what `toResponse`
 * makes of it: the gRPC listeners answer in gRPC statuses). The only place a MeshError
 * becomes HTTP on the data path.
 */
export async function runChain(
  rt: Runtime,
  ctx: Ctx,
  chain: (ctx: Ctx) => Promise<void>,
  toResponse: (err: MeshError, ctx: Ctx) => Response = errorResponse,
): Promise<Response> {
  rt.inflight++;
  const hop = rt.telemetry.begin(ctx);
  let res: Response;
  let error: MeshError | undefined;
  try {
    await chain(ctx);
    if (!ctx.res) throw new Error("the chain ended without a response (is transport the last handler?)");
    res = ctx.res;
  } catch (err) {
    error = toMeshError(err);
    res = ctx.res = toResponse(error, ctx);
  } finally {
    rt.inflight--;
  }
  rt.telemetry.end(ctx, res, error, hop);
  if (error?.code === "internal") console.error(`mesher: ${error.message}`, error.cause ?? "");
  return res;
}

/**
 * True when `via` (a comma list) contains `mark` as a whole item. Scans in place: the
 * provider side checks every request, and splitting would allocate an array per request.
 */
export function viaContains(via: string | null, mark: string): boolean {
  if (!via) return false;
  for (let i = via.indexOf(mark); i >= 0; i = via.indexOf(mark, i + 1)) {
    let before = i - 1;
    while (before >= 0 && (via[before] === " " || via[before] === "\t")) before--;
    if (before >= 0 && via[before] !== ",") continue;
    let after = i + mark.length;
    while (after < via.length && (via[after] === " " || via[after] === "\t")) after++;
    if (after === via.length || via[after] === ",") return true;
  }
  return false;
}
