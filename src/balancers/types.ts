import type { Endpoint } from "../upstream/cluster.ts";
import type { Ctx } from "../pipeline/types.ts";

/**
 * A balancer picks one endpoint among candidates that are already filtered (available, with
 * the route's tags, not yet tried). One balancer instance serves one cluster.
 */
export interface Balancer {
  pick(candidates: readonly Endpoint[], ctx: Ctx): Endpoint | undefined;
  /**
   * Optional feedback once the chain after the balancer is done with the picked endpoint:
   * latency to response headers in ms and whether the attempt failed (error or 5xx). Balancers
   * that do not learn leave it out, and the handler then skips the timing entirely.
   */
  done?(ctx: Ctx, endpoint: Endpoint, ms: number, failed: boolean): void;
}

/** Options are each balancer's own (checked by the loadBalance schema before they get here). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type BalancerFactory = (options?: any) => Balancer;
