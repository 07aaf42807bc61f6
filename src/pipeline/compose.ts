import type { Ctx, Handler } from "./types.ts";

/**
 * Composes handlers into one function, as Hono's compose does, with one difference: a handler
 * may call `next()` more than once (a retry runs the rest of the chain again), so there is no
 * "called twice" guard.
 *
 * No async wrapper per handler: `next()` returns what the next handler returns (its promise,
 * or a resolved one), so a handler that only passes the call on (`return next()` from a plain
 * function) adds no promise and no microtask to the request. Each wrapper cost two promise
 * resolutions per handler on every request (bench/NOTES.md, "Change 4"). A handler that throws
 * synchronously still comes back as a rejected promise.
 */
export function compose(handlers: readonly Handler[]): (ctx: Ctx) => Promise<void> {
  const n = handlers.length;
  const dispatch = (ctx: Ctx, i: number): Promise<void> => {
    if (i === n) return DONE;
    try {
      const r = handlers[i]!(ctx, () => dispatch(ctx, i + 1));
      return r instanceof Promise ? r : r === undefined ? DONE : Promise.resolve(r);
    } catch (err) {
      return Promise.reject(err);
    }
  };
  return (ctx) => dispatch(ctx, 0);
}

const DONE: Promise<void> = Promise.resolve();
