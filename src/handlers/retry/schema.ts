/**
 * Retry policy schema: per service (`services.X.retry`) and per route (overrides). Semantics
 * follow Envoy's router retry policy and go-chassis' retryOnSame/retryOnNext.
 */
import * as v from "valibot";
import { Duration } from "../../config/duration.ts";

const d = v.description;

export const RETRY_ON = [
  "5xx",
  "gateway-error",
  "connect-failure",
  "reset",
  "retriable-4xx",
  "retriable-status-codes",
] as const;

export const RetrySchema = v.strictObject({
  attempts: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), d("retries after the first try (0: none)")), 1),
  perTryTimeout: v.optional(v.pipe(Duration, d("timeout of each try (0: only the overall timeout)")), 0),
  on: v.optional(
    v.pipe(v.array(v.picklist(RETRY_ON)), d("conditions that trigger a retry (Envoy's retry_on)")),
    ["connect-failure", "reset", "gateway-error"],
  ),
  statusCodes: v.optional(
    v.pipe(v.array(v.pipe(v.number(), v.integer(), v.minValue(100), v.maxValue(599))), d("statuses for retriable-status-codes")),
    [],
  ),
  backoff: v.optional(
    v.strictObject({
      base: v.optional(v.pipe(Duration, d("base interval; retry N waits a random time in [0, base*2^N)")), "25ms"),
      max: v.optional(v.pipe(Duration, d("cap of one backoff wait")), "250ms"),
    }),
    {},
  ),
  sameEndpoint: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), d("tries on the same endpoint before moving on (go-chassis retryOnSame)")), 0),
  nextEndpoint: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), d("how many other endpoints may be tried (go-chassis retryOnNext)")), 1),
  nonIdempotent: v.optional(v.pipe(v.boolean(), d("also retry POST/PATCH and other non-idempotent methods")), false),
  maxBodyBytes: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), d("largest request body buffered for replay; larger bodies are not retried")), 65536),
  budget: v.optional(
    v.strictObject({
      percent: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(100), d("retries allowed as a share of active requests")), 20),
      minConcurrency: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), d("retries always allowed concurrently")), 3),
    }),
    {},
  ),
});

export type RetryOptions = v.InferOutput<typeof RetrySchema>;
