import type { Ctx, Handler } from "./types.ts";

/**
 * Composes handlers into one function, as Hono's compose does, with one difference: a handler
 * may call `next()` more than once (a retry runs the rest of the chain again), so there is no
 * "called twice" guard.
 */
export function compose(handlers: readonly Handler[]): (ctx: Ctx) => Promise<void> {
  const n = handlers.length;
  const dispatch = async (ctx: Ctx, i: number): Promise<void> => {
    if (i === n) return;
    await handlers[i]!(ctx, () => dispatch(ctx, i + 1));
  };
  return (ctx) => dispatch(ctx, 0);
}
