import { MeshError } from "../../pipeline/errors.ts";
import type { Ctx, Handler, HandlerFactory, Next } from "../../pipeline/types.ts";
import { serviceSetting } from "../settings.ts";
import { sleep } from "../timeout/deadline.ts";
import type { FaultOptions } from "./schema.ts";

/** Envoy's fault filter request headers (honoured only with `fromHeaders: true`). */
export const FAULT_HEADERS = {
  delay: "x-envoy-fault-delay-request",
  delayPercent: "x-envoy-fault-delay-request-percentage",
  abort: "x-envoy-fault-abort-request",
  abortPercent: "x-envoy-fault-abort-request-percentage",
} as const;

/** True with probability percent/100 (go-chassis: rand(1..100) <= percent). */
const hit = (percent: number) => percent >= 100 || Math.random() * 100 < percent;

function headerNumber(ctx: Ctx, name: string): number | undefined {
  const raw = ctx.headers.get(name);
  if (raw === null) return undefined;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

interface Plan {
  delayMs?: number;
  delayPercent: number;
  abortStatus?: number;
  abortPercent: number;
}

const FAULT_HEADER_NAMES = Object.values(FAULT_HEADERS);

/** The plan a fault setting gives on its own, made once per setting (not per request). */
const basePlans = new WeakMap<FaultOptions, Readonly<Plan>>();
function basePlan(o: FaultOptions): Readonly<Plan> {
  let p = basePlans.get(o);
  if (!p) {
    p = Object.freeze({
      delayMs: o.delay?.fixedDelay,
      delayPercent: o.delay?.percent ?? 100,
      abortStatus: o.abort?.httpStatus,
      abortPercent: o.abort?.percent ?? 100,
    });
    basePlans.set(o, p);
  }
  return p;
}

/** What to inject: the config, overridden by Envoy's headers when allowed (percentages capped by the config's). */
function plan(ctx: Ctx, o: FaultOptions): Readonly<Plan> {
  if (!o.fromHeaders) return basePlan(o);
  const p: Plan = { ...basePlan(o) };
  const delay = headerNumber(ctx, FAULT_HEADERS.delay);
  if (delay !== undefined) p.delayMs = delay;
  const dp = headerNumber(ctx, FAULT_HEADERS.delayPercent);
  if (dp !== undefined) p.delayPercent = Math.min(dp, p.delayPercent);
  const status = headerNumber(ctx, FAULT_HEADERS.abort);
  if (status !== undefined && Number.isInteger(status) && status >= 200 && status <= 599) p.abortStatus = status;
  const ap = headerNumber(ctx, FAULT_HEADERS.abortPercent);
  if (ap !== undefined) p.abortPercent = Math.min(ap, p.abortPercent);
  for (const h of FAULT_HEADER_NAMES) ctx.headers.delete(h);
  return p;
}

/**
 * Fault injection (go-chassis `fault-inject`, Istio HTTPFaultInjection): `ctx.route.fault`,
 * else `services.X.fault`. A delay (by percent) comes first, then an abort (by percent) that
 * answers the configured status with code `fault_injected`.
 */
export const fault: HandlerFactory = (env): Handler => {
  const setting = serviceSetting(env.config, "fault");
  const faults = env.metrics?.resilience.faults;
  // Not async where nothing is configured: the call passes on without a promise of its own.
  return function fault(ctx, next) {
    const o = ctx.route?.fault ?? setting(ctx.service);
    return o ? inject(ctx, next, o) : next();
  };

  async function inject(ctx: Ctx, next: Next, o: FaultOptions): Promise<void> {
    const p = plan(ctx, o);
    if (p.delayMs && hit(p.delayPercent)) {
      faults?.inc({ service_name: ctx.service, kind: "delay" });
      await sleep(p.delayMs, ctx.signal);
    }
    if (p.abortStatus !== undefined && hit(p.abortPercent)) {
      faults?.inc({ service_name: ctx.service, kind: "abort" });
      throw new MeshError("fault_injected", `fault injected: abort with ${p.abortStatus}`, { status: p.abortStatus });
    }
    return next();
  }
};
