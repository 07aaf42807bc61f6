import { balancers, type Balancer, type BalancerFactory } from "../../balancers/index.ts";
import { MeshError } from "../../pipeline/errors.ts";
import type { Ctx, Handler, HandlerFactory, Next } from "../../pipeline/types.ts";
import { hasTags, isAvailable, type Endpoint } from "../../upstream/cluster.ts";
import { fingerprint, keep, serviceSetting } from "../settings.ts";
import type { LoadBalancerOptions } from "./schema.ts";

/**
 * Available endpoints of the request's cluster that carry the route's tags and, unless
 * `withTried`, were not tried yet.
 */
export function candidates(ctx: Ctx, now = Date.now(), withTried = false): Endpoint[] {
  const out: Endpoint[] = [];
  const tags = ctx.route?.tags;
  const tried = withTried ? undefined : ctx.tried;
  for (const e of ctx.cluster!.endpoints) {
    if (isAvailable(e, now) && hasTags(e, tags) && !tried?.includes(e)) out.push(e);
  }
  return out;
}

const ROUND_ROBIN: LoadBalancerOptions = { kind: "roundRobin" };

/**
 * Picks one endpoint of `ctx.cluster` with the service's balancer (`services.X.loadBalancer`,
 * else the top-level default, else round-robin). On a retry it avoids endpoints already tried
 * while others remain (with one endpoint, the retry goes to it again), and honours
 * `ctx.retryEndpoint` (retry `sameEndpoint`). Balancer state lives per service and survives a
 * reload that leaves the service's balancer setting unchanged.
 */
export const loadBalance: HandlerFactory = (env): Handler => {
  const setting = serviceSetting(env.config, "loadBalancer", ROUND_ROBIN);
  const perCluster = new Map<string, Balancer>();
  /** A cluster's balancer, made from its service's setting (a gRPC cluster `grpc:X` takes X's). */
  function balancerFor(cluster: string, service: string): Balancer {
    let lb = perCluster.get(cluster);
    if (!lb) {
      const o = setting(service)!;
      lb = keep(env, `loadBalance:${cluster}:${fingerprint(o)}`, () => (balancers[o.kind] as BalancerFactory)(o));
      perCluster.set(cluster, lb);
    }
    return lb;
  }

  // Not async unless the balancer wants to hear how the call went (least-request, latency).
  return function loadBalance(ctx, next) {
    const cluster = ctx.cluster;
    if (!cluster) throw new MeshError("internal", "loadBalance needs the router before it in the chain");
    const lb = balancerFor(cluster.name, ctx.service);
    const now = Date.now();
    let endpoint: Endpoint | undefined;
    const again = ctx.retryEndpoint;
    if (again && isAvailable(again, now) && cluster.endpoints.includes(again)) endpoint = again;
    else {
      let list = candidates(ctx, now);
      // Every candidate was tried: try them again rather than fail (as Envoy's previous_hosts
      // predicate gives up after its attempts).
      if (list.length === 0 && ctx.tried?.length) list = candidates(ctx, now, true);
      endpoint = lb.pick(list, ctx);
    }
    if (!endpoint) {
      const tags = ctx.route?.tags ? ` with tags ${JSON.stringify(ctx.route.tags)}` : "";
      throw new MeshError("no_healthy_upstream", `service "${cluster.name}" has no available endpoint${tags}`);
    }
    ctx.endpoint = endpoint;
    return lb.done ? observed(ctx, next, lb, endpoint) : next();
  };
};

async function observed(ctx: Ctx, next: Next, lb: Balancer, endpoint: Endpoint): Promise<void> {
  const t0 = performance.now();
  let failed = true;
  try {
    await next();
    failed = (ctx.res?.status ?? 500) >= 500;
  } finally {
    lb.done!(ctx, endpoint, performance.now() - t0, failed);
  }
}
