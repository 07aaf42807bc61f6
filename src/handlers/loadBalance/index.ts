import { balancers, type Balancer } from "../../balancers/index.ts";
import { MeshError } from "../../pipeline/errors.ts";
import type { Ctx, Handler, HandlerFactory } from "../../pipeline/types.ts";
import { hasTags, isAvailable, type Endpoint } from "../../upstream/cluster.ts";

/** Available endpoints of the request's cluster that carry the route's tags and were not tried. */
export function candidates(ctx: Ctx, now = Date.now()): Endpoint[] {
  const out: Endpoint[] = [];
  const tags = ctx.route?.tags;
  for (const e of ctx.cluster!.endpoints) {
    if (isAvailable(e, now) && hasTags(e, tags) && !ctx.tried?.includes(e)) out.push(e);
  }
  return out;
}

/** Picks one endpoint of `ctx.cluster` with the cluster's balancer. */
export const loadBalance: HandlerFactory = (): Handler => {
  const perCluster = new Map<string, Balancer>();
  return async function loadBalance(ctx, next) {
    const cluster = ctx.cluster;
    if (!cluster) throw new MeshError("internal", "loadBalance needs the router before it in the chain");
    let lb = perCluster.get(cluster.name);
    if (!lb) perCluster.set(cluster.name, (lb = balancers.roundRobin!()));
    const endpoint = lb.pick(candidates(ctx), ctx);
    if (!endpoint) {
      const tags = ctx.route?.tags ? ` with tags ${JSON.stringify(ctx.route.tags)}` : "";
      throw new MeshError("no_healthy_upstream", `service "${cluster.name}" has no available endpoint${tags}`);
    }
    ctx.endpoint = endpoint;
    await next();
  };
};
