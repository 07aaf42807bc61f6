import { MeshError } from "../../pipeline/errors.ts";
import type { Ctx, Handler, HandlerFactory, Next } from "../../pipeline/types.ts";
import { serviceSetting } from "../settings.ts";
import { sleep, withDeadline } from "../timeout/deadline.ts";
import { bufferBody } from "./body.ts";
import type { RetryOptions } from "./schema.ts";

/** Methods retried without `nonIdempotent` (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/** The retry_on condition this outcome meets, or undefined when it must not be retried. */
export function retryReason(o: RetryOptions, err: unknown, res: Response | undefined): string | undefined {
  const on = o.on;
  if (err !== undefined) {
    if (!(err instanceof MeshError)) return undefined;
    const generic = on.includes("5xx") || on.includes("gateway-error");
    if (err.code === "upstream_connect_failure" && (generic || on.includes("connect-failure"))) return "connect-failure";
    if (err.code === "upstream_reset" && (generic || on.includes("reset"))) return "reset";
    // Only a per-try timeout gets here (the caller stops when the overall one fired).
    if (err.code === "upstream_timeout" && generic) return "per-try-timeout";
    return undefined;
  }
  const s = res?.status ?? 0;
  if (s >= 500 && on.includes("5xx")) return "5xx";
  if (s >= 502 && s <= 504 && on.includes("gateway-error")) return "gateway-error";
  if (s === 409 && on.includes("retriable-4xx")) return "retriable-4xx";
  if (on.includes("retriable-status-codes") && o.statusCodes.includes(s)) return "retriable-status-codes";
  return undefined;
}

/** Full-jitter backoff: retry n (0-based) waits a random time in [0, min(max, base * 2^n)). */
export function backoffMs(o: RetryOptions, n: number): number {
  return Math.random() * Math.min(o.backoff.max, o.backoff.base * 2 ** n);
}

/** Requests and retries in flight for one service: the retry budget's inputs. */
interface Budget {
  active: number;
  retrying: number;
}

/**
 * Retries (Envoy's retry policy, go-chassis' retryOnSame/retryOnNext): `ctx.route.retry`, else
 * `services.X.retry`, else the top-level `retry`; nothing is retried when none is set. Sits
 * before loadBalance and runs the rest of the chain again per attempt. Only idempotent
 * methods are retried unless `nonIdempotent`; a body is buffered for replay up to
 * `maxBodyBytes`. After `sameEndpoint` retries on one endpoint the next retry moves to another,
 * up to `nextEndpoint` moves; retries beyond that stay on the last endpoint (`attempts` is
 * the cap). The retry budget caps retries in flight to `budget.percent` of the service's
 * active requests (at least `budget.minConcurrency`).
 */
export const retry: HandlerFactory = (env): Handler => {
  const setting = serviceSetting(env.config, "retry");
  const budgets = new Map<string, Budget>();
  const retries = env.metrics?.resilience.retries;

  async function attempts(ctx: Ctx, next: () => Promise<void>, o: RetryOptions, budget: Budget): Promise<void> {
    if (!(await bufferBody(ctx, o.maxBodyBytes))) return next();
    const outer = ctx.signal;
    let sameLeft = o.sameEndpoint;
    let movesLeft = o.nextEndpoint;
    let retrying = false;
    try {
      for (let n = 0; ; n++) {
        const release = o.perTryTimeout ? withDeadline(ctx, o.perTryTimeout, "per-try timeout") : undefined;
        let err: unknown;
        try {
          await next();
        } catch (e) {
          err = e ?? new Error("failed");
        } finally {
          release?.();
        }
        const done = () => {
          if (err !== undefined) throw err;
        };
        if (n >= o.attempts || outer.aborted) return done();
        const reason = retryReason(o, err, ctx.res);
        if (!reason) return done();
        const endpoint = ctx.endpoint;
        ctx.retryEndpoint = undefined;
        if (endpoint && (sameLeft > 0 || movesLeft === 0)) {
          // Stay: sameEndpoint tries left, or no more moves allowed (attempts stays the cap).
          if (sameLeft > 0) sameLeft--;
          ctx.retryEndpoint = endpoint;
        } else {
          movesLeft--;
          sameLeft = o.sameEndpoint;
          if (endpoint) (ctx.tried ??= []).push(endpoint);
        }
        if (!retrying) {
          const allowed = Math.max(o.budget.minConcurrency, (budget.active * o.budget.percent) / 100);
          if (budget.retrying >= allowed) return done();
          budget.retrying++;
          retrying = true;
        }
        // The failed response is discarded: cancel its body so the connection is freed.
        if (ctx.res) {
          ctx.res.body?.cancel().catch(() => {});
          ctx.res = undefined;
        }
        retries?.inc({ service_name: ctx.service, reason });
        // Rejects with the overall timeout's MeshError (or the client's abort) if one ends the wait.
        await sleep(backoffMs(o, n), outer);
        ctx.endpoint = undefined;
      }
    } finally {
      if (retrying) budget.retrying--;
    }
  }

  // Not async where no retry applies: the call passes on without a promise of its own.
  return function retry(ctx, next) {
    const o = ctx.route?.retry ?? setting(ctx.service);
    if (!o || o.attempts === 0 || (!o.nonIdempotent && !IDEMPOTENT.has(ctx.method))) return next();
    return retrying(ctx, next, o);
  };

  async function retrying(ctx: Ctx, next: Next, o: RetryOptions): Promise<void> {
    let budget = budgets.get(ctx.service);
    if (!budget) budgets.set(ctx.service, (budget = { active: 0, retrying: 0 }));
    budget.active++;
    try {
      await attempts(ctx, next, o, budget);
    } finally {
      budget.active--;
    }
  }
};
