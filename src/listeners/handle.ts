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

/** True when `via` (a comma list) contains `mark`. */
export function viaContains(via: string | null, mark: string): boolean {
  if (!via) return false;
  for (const item of via.split(",")) if (item.trim() === mark) return true;
  return false;
}
