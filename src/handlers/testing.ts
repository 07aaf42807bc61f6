/**
 * Pieces for handler unit tests: a resolved config, a context, and a terminal handler that
 * plays a scripted upstream (a fake that injects faults; end-to-end tests use real sockets).
 */
import { resolveConfig } from "../config/resolve.ts";
import type { UserConfig } from "../config/schema.ts";
import { newContext } from "../listeners/handle.ts";
import { compose } from "../pipeline/compose.ts";
import { MeshError } from "../pipeline/errors.ts";
import { staticEndpoints } from "../pipeline/build.ts";
import type { Ctx, Handler, HandlerEnv, HandlerFactory } from "../pipeline/types.ts";
import { Metrics } from "../telemetry/metrics.ts";
import { ClusterManager } from "../upstream/clusters.ts";

export function testEnv(services: UserConfig["services"], top: Partial<UserConfig> = {}, direction: HandlerEnv["direction"] = "consumer"): HandlerEnv & { metrics: Metrics; store: Map<string, unknown> } {
  const config = resolveConfig({ service: { name: "shop" }, ...top, services });
  const clusters = new ClusterManager();
  clusters.setOrigin("static", staticEndpoints(config));
  return { config, clusters, direction, metrics: new Metrics(), store: new Map() };
}

export function testCtx(env: HandlerEnv, service: string, init: { method?: string; body?: string; headers?: Record<string, string>; client?: string } = {}): Ctx {
  const req = new Request(`http://${service}/x`, { method: init.method ?? "GET", body: init.body, headers: init.headers });
  const ctx = newContext(req, env.direction, init.client ?? "10.0.0.1", new Headers(init.headers), "/x", service);
  ctx.cluster = env.clusters.get(service);
  ctx.route = { name: "default" };
  return ctx;
}

/** One scripted upstream answer: a status, an error code to throw, or "hang" (until ctx.signal). */
export type Step = number | "connect" | "reset" | "hang";

/** A terminal handler answering from `steps` in turn (the last repeats); records each call. */
export function scripted(steps: Step[]): Handler & { calls: { endpoint?: string; body?: string }[] } {
  let i = 0;
  const calls: { endpoint?: string; body?: string }[] = [];
  const h = async function upstream(ctx: Ctx) {
    const step = steps[Math.min(i++, steps.length - 1)]!;
    const body = ctx.body instanceof Uint8Array ? new TextDecoder().decode(ctx.body) : ctx.body ? await new Response(ctx.body).text() : undefined;
    calls.push({ endpoint: ctx.endpoint?.address, body });
    ctx.attempts++;
    if (step === "connect") throw new MeshError("upstream_connect_failure", "refused");
    if (step === "reset") throw new MeshError("upstream_reset", "reset");
    if (step === "hang") {
      await new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true }));
    }
    ctx.res = new Response(`status ${step}`, { status: step as number });
  };
  return Object.assign(h, { calls });
}

/** Runs handlers made by `factories` then `terminal`; resolves with the status or the error code. */
export async function run(env: HandlerEnv, factories: HandlerFactory[], terminal: Handler, ctx: Ctx): Promise<number | string> {
  const chain = compose([...factories.map((f) => f(env)), terminal]);
  try {
    await chain(ctx);
    return ctx.res!.status;
  } catch (err) {
    return err instanceof MeshError ? err.code : String(err);
  }
}
