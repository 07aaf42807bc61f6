import type { Ctx, Handler, HandlerFactory, Next } from "../../pipeline/types.ts";
import { serviceSetting } from "../settings.ts";
import { withDeadline } from "./deadline.ts";

/**
 * The overall timeout of a call: `ctx.route.timeout`, else `services.X.timeout`, else the
 * top-level `timeout`. It covers every retry (it sits before `retry`) and ends when response
 * headers arrive: a streaming body is not cut. Expiry answers 504 `upstream_timeout`.
 */
export const timeout: HandlerFactory = ({ config }): Handler => {
  const setting = serviceSetting(config, "timeout");
  // Not async where no timeout applies: the call passes on without a promise of its own.
  return function timeout(ctx, next) {
    const ms = ctx.route?.timeout ?? setting(ctx.service);
    return ms ? within(ctx, next, ms) : next();
  };
};

async function within(ctx: Ctx, next: Next, ms: number): Promise<void> {
  const release = withDeadline(ctx, ms, "timeout");
  try {
    await next();
  } finally {
    release();
  }
}
