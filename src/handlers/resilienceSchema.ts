/**
 * The traffic-management keys, gathered so schema.ts plugs them in with one line each:
 * per service (`services.X.<key>`) and as top-level defaults for services without their own.
 */
import * as v from "valibot";
import { CircuitBreakerSchema } from "./circuitBreaker/schema.ts";
import { FaultSchema } from "./fault/schema.ts";
import { LoadBalancerSchema } from "./loadBalance/schema.ts";
import { OutlierDetectionSchema } from "./outlierDetection/schema.ts";
import { GlobalRateLimitSchema, RateLimitSchema } from "./rateLimit/schema.ts";
import { RetrySchema } from "./retry/schema.ts";
import { TimeoutSchema } from "./timeout/schema.ts";

const d = v.description;

const shared = {
  loadBalancer: v.optional(LoadBalancerSchema),
  timeout: v.optional(TimeoutSchema),
  retry: v.optional(v.pipe(RetrySchema, d("retry policy; no retries unless set (as Envoy and go-chassis)"))),
  circuitBreaker: v.optional(v.pipe(CircuitBreakerSchema, d("circuit breaker and bulkhead; off unless set"))),
  outlierDetection: v.optional(v.pipe(OutlierDetectionSchema, d("ejects failing endpoints; off unless set"))),
};

/** Keys of `services.X`. */
export const ServiceResilienceEntries = {
  ...shared,
  rateLimit: v.optional(v.pipe(RateLimitSchema, d("limit on calls to this service (consumer side)"))),
  fault: v.optional(v.pipe(FaultSchema, d("fault injection on calls to this service"))),
};

/** Top-level defaults for every service that does not set its own. */
export const GlobalResilienceEntries = {
  ...shared,
  rateLimit: v.optional(v.pipe(GlobalRateLimitSchema, d("rate limits: default consumer-side limit and the provider-side one"))),
};
