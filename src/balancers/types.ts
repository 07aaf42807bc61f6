import type { Endpoint } from "../upstream/cluster.ts";
import type { Ctx } from "../pipeline/types.ts";

/**
 * A balancer picks one endpoint among candidates that are already filtered (available, with
 * the route's tags, not yet tried). One balancer instance serves one cluster.
 */
export interface Balancer {
  pick(candidates: readonly Endpoint[], ctx: Ctx): Endpoint | undefined;
}

export type BalancerFactory = (options?: Record<string, unknown>) => Balancer;
