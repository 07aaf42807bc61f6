import { MeshError } from "../../pipeline/errors.ts";
import type { Ctx, Handler, HandlerFactory } from "../../pipeline/types.ts";
import type { Endpoint } from "../../upstream/cluster.ts";
import { fingerprint, keep, passThrough, serviceSetting } from "../settings.ts";
import { Breaker } from "./breaker.ts";
import type { CircuitBreakerOptions } from "./schema.ts";

type Reason = "circuit_open" | "max_concurrent";

/** Does this outcome count against the breaker? A client that went away does not. */
function failedOutcome(ctx: Ctx, o: CircuitBreakerOptions, err: unknown): boolean {
  if (err !== undefined) return !ctx.req.signal.aborted;
  return o.failureStatuses.includes(ctx.res?.status ?? 500);
}

/**
 * Circuit breaker and bulkhead (go-chassis bizkeeper, hystrix semantics), on when
 * `services.X.circuitBreaker` (or the top-level default) is set. `scope: "service"` and
 * `"route"` wrap the whole call, retries included; `"endpoint"` keeps one breaker per endpoint
 * and steers the balancer away from open ones. A refused request gets the `fallback`.
 */
export const circuitBreaker: HandlerFactory = (env): Handler => {
  const setting = serviceSetting(env.config, "circuitBreaker");
  if (setting.none) return passThrough("circuitBreaker");
  const m = env.metrics?.resilience;

  const breakers = new Map<string, Breaker>();
  function breakerFor(service: string, key: string, o: CircuitBreakerOptions): Breaker {
    let b = breakers.get(key);
    if (!b) {
      b = keep(env, `circuitBreaker:${key}:${fingerprint(o)}`, () => {
        const made = new Breaker(o, (state) => m?.breakerStateChanges.inc({ service_name: service, breaker: key, state }));
        made.label = key.replace("@", "/");
        return made;
      });
      breakers.set(key, b);
    }
    return b;
  }

  async function refuse(ctx: Ctx, o: CircuitBreakerOptions, reason: Reason, what: string): Promise<void> {
    m?.breakerRejections.inc({ service_name: ctx.service, reason });
    if (o.fallback === "empty") ctx.res = new Response(null, { status: 200 });
    else if (typeof o.fallback === "function") ctx.res = await o.fallback(ctx, reason);
    else if (reason === "max_concurrent") throw new MeshError("overloaded", `${what}: ${o.maxConcurrent} requests already in flight`);
    else throw new MeshError("circuit_open", `${what} is open: recent calls failed`);
  }

  async function guarded(ctx: Ctx, next: () => Promise<void>, o: CircuitBreakerOptions, b: Breaker, what: string): Promise<void> {
    const now = Date.now();
    const verdict = b.acquire(now);
    if (!verdict) return refuse(ctx, o, "circuit_open", `the circuit breaker of ${what}`);
    if (o.maxConcurrent && b.active >= o.maxConcurrent) {
      if (verdict === "probe") b.release();
      return refuse(ctx, o, "max_concurrent", what);
    }
    b.active++;
    let err: unknown;
    try {
      await next();
    } catch (e) {
      err = e ?? new Error("failed");
      throw e;
    } finally {
      b.active--;
      b.record(failedOutcome(ctx, o, err), verdict === "probe", Date.now());
    }
  }

  /** Endpoint scope: open endpoints go to ctx.tried so the balancer skips them. */
  async function perEndpoint(ctx: Ctx, next: () => Promise<void>, o: CircuitBreakerOptions): Promise<void> {
    const cluster = ctx.cluster;
    if (!cluster) return next();
    const now = Date.now();
    let open = 0;
    for (const e of cluster.endpoints) {
      if (breakerFor(ctx.service, `${ctx.service}@${e.address}`, o).isOpen(now)) {
        (ctx.tried ??= []).push(e);
        open++;
      }
    }
    if (open > 0 && open === cluster.endpoints.length) return refuse(ctx, o, "circuit_open", `every endpoint's circuit breaker of ${ctx.service}`);
    let err: unknown;
    try {
      await next();
    } catch (e) {
      err = e ?? new Error("failed");
      throw e;
    } finally {
      const e: Endpoint | undefined = ctx.endpoint;
      if (e) {
        const b = breakerFor(ctx.service, `${ctx.service}@${e.address}`, o);
        b.record(failedOutcome(ctx, o, err), b.state !== "closed", Date.now());
      }
    }
  }

  return async function circuitBreaker(ctx, next) {
    const o = setting(ctx.service);
    if (!o) return next();
    if (o.scope === "endpoint") return perEndpoint(ctx, next, o);
    const key = o.scope === "route" ? `${ctx.service}/${ctx.route?.name ?? "default"}` : ctx.service;
    return guarded(ctx, next, o, breakerFor(ctx.service, key, o), o.scope === "route" ? `route ${key}` : `service ${ctx.service}`);
  };
};

/** Every live breaker's state by label, for the stats page (reads the handlers' state store). */
export function breakerStates(store: Map<string, unknown>, now = Date.now()): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of store.values()) {
    if (value instanceof Breaker && value.label) out[value.label] = value.describe(now);
  }
  return out;
}
