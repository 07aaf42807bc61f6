import { MeshError } from "../../pipeline/errors.ts";
import type { Ctx, Handler, HandlerFactory } from "../../pipeline/types.ts";
import type { Cluster, Endpoint } from "../../upstream/cluster.ts";
import { keep, passThrough, serviceSetting } from "../settings.ts";
import type { OutlierDetectionOptions } from "./schema.ts";

interface Tally {
  fiveXx: number;
  gateway: number;
  /** Ejections so far; the next one lasts base * (ejections + 1). */
  ejections: number;
  /** When the last ejection ended (epoch ms); 0 before any. */
  lastEjectionEnd: number;
}

type Outcome = "ok" | "5xx" | "gateway";

function outcomeOf(ctx: Ctx, err: unknown): Outcome | undefined {
  if (err === undefined) {
    const s = ctx.res?.status ?? 500;
    if (s < 500) return "ok";
    return s === 502 || s === 503 || s === 504 ? "gateway" : "5xx";
  }
  if (ctx.req.signal.aborted) return undefined; // the client left: says nothing about the endpoint
  const code = err instanceof MeshError ? err.code : "";
  return code === "upstream_connect_failure" || code === "upstream_reset" || code === "upstream_timeout" ? "gateway" : undefined;
}

/**
 * Outlier detection (Envoy's consecutive_5xx / consecutive_gateway_failure): an endpoint that
 * answers `consecutive5xx` 5xx (gateway errors included) or `consecutiveGatewayErrors`
 * 502/503/504 or connection failures in a row is ejected: `endpoint.ejectedUntil` is set, so
 * balancers skip it and /clusters shows it. The Nth ejection lasts N x baseEjectionTime (up to
 * maxEjectionTime); the multiplier decays by one per baseEjectionTime of good behaviour. At
 * most maxEjectionPercent of a cluster is ejected at once, but always at least one endpoint.
 * Sits after loadBalance, so it sees every attempt.
 */
export const outlierDetection: HandlerFactory = (env): Handler => {
  const setting = serviceSetting(env.config, "outlierDetection");
  if (setting.none) return passThrough("outlierDetection");
  // Endpoint objects keep their identity across reloads, so this survives them too.
  const records = keep(env, "outlierDetection:records", () => new WeakMap<Endpoint, Tally>());
  const ejections = env.metrics?.resilience.ejections;

  function eject(cluster: Cluster, e: Endpoint, r: Tally, o: OutlierDetectionOptions, now: number): void {
    let ejected = 0;
    for (const x of cluster.endpoints) if (x.ejectedUntil > now) ejected++;
    const allowed = Math.max(1, Math.floor((cluster.endpoints.length * o.maxEjectionPercent) / 100));
    if (ejected >= allowed) return;
    if (r.lastEjectionEnd) r.ejections = Math.max(0, r.ejections - Math.floor((now - r.lastEjectionEnd) / o.baseEjectionTime));
    r.ejections++;
    e.ejectedUntil = now + Math.min(o.maxEjectionTime, o.baseEjectionTime * r.ejections);
    r.lastEjectionEnd = e.ejectedUntil;
    r.fiveXx = r.gateway = 0;
    ejections?.inc({ service_name: cluster.name, endpoint: e.address });
  }

  return async function outlierDetection(ctx, next) {
    const o = setting(ctx.service);
    const e = ctx.endpoint;
    if (!o || !e || !ctx.cluster) return next();
    let err: unknown;
    try {
      await next();
    } catch (x) {
      err = x ?? new Error("failed");
      throw x;
    } finally {
      const outcome = outcomeOf(ctx, err);
      if (outcome) {
        let r = records.get(e);
        if (!r) records.set(e, (r = { fiveXx: 0, gateway: 0, ejections: 0, lastEjectionEnd: 0 }));
        if (outcome === "ok") r.fiveXx = r.gateway = 0;
        else {
          r.fiveXx++;
          if (outcome === "gateway") r.gateway++;
          else r.gateway = 0;
          const now = Date.now();
          if ((o.consecutive5xx && r.fiveXx >= o.consecutive5xx) || (o.consecutiveGatewayErrors && r.gateway >= o.consecutiveGatewayErrors)) {
            if (e.ejectedUntil <= now) eject(ctx.cluster, e, r, o, now);
          }
        }
      }
    }
  };
};
