import type { HandlerFactory } from "../pipeline/types.ts";
import { circuitBreaker } from "./circuitBreaker/index.ts";
import { egressEndpoint } from "./egressEndpoint/index.ts";
import { fault } from "./fault/index.ts";
import { loadBalance } from "./loadBalance/index.ts";
import { outlierDetection } from "./outlierDetection/index.ts";
import { rateLimit } from "./rateLimit/index.ts";
import { retry } from "./retry/index.ts";
import { router } from "./router/index.ts";
import { timeout } from "./timeout/index.ts";
import { transport } from "./transport/index.ts";

/** Built-in handlers by the names chains use. */
export const builtinHandlers: Record<string, HandlerFactory> = {
  router,
  rateLimit,
  fault,
  circuitBreaker,
  timeout,
  retry,
  loadBalance,
  outlierDetection,
  egressEndpoint,
  transport,
};

/**
 * Mesher's default chains (seed 001: consumer router, ratelimiter, bizkeeper, loadbalance,
 * transport; provider ratelimiter, transport). Handlers with nothing configured for a service
 * pass straight on. Order matters: rate limit and faults before the breaker (they say nothing
 * about the upstream), the breaker and the overall timeout around all retries, retry before
 * the balancer (each attempt picks again), outlier detection after it (it judges one endpoint).
 */
export const DEFAULT_CHAINS = {
  consumer: ["router", "rateLimit", "fault", "circuitBreaker", "timeout", "retry", "loadBalance", "outlierDetection", "transport"],
  provider: ["rateLimit", "transport"],
  /**
   * Calls to external hosts (egress): no router, balancer or breaker, the endpoint is the host
   * itself. Mesher's egress chain is ratelimiter-consumer, transport.
   */
  egress: ["rateLimit", "timeout", "retry", "egressEndpoint", "transport"],
} as const;
