import { MeshError } from "../../pipeline/errors.ts";
import type { Ctx } from "../../pipeline/types.ts";

/**
 * Bounds the rest of the chain to `ms`: `ctx.signal` becomes one that also fires at the
 * deadline with a MeshError('upstream_timeout') reason (transport rethrows it as is). The
 * returned function clears the timer and restores the previous signal; call it once response
 * headers are in, so a streaming body is not cut afterwards.
 */
export function withDeadline(ctx: Ctx, ms: number, what: string): () => void {
  const outer = ctx.signal;
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new MeshError("upstream_timeout", `${what}: no response from ${ctx.service} within ${ms} ms`)), ms);
  ctx.signal = AbortSignal.any([outer, ac.signal]);
  return () => {
    clearTimeout(timer);
    ctx.signal = outer;
  };
}

/** Waits `ms` unless `signal` fires first (then rejects with its reason). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
