/**
 * `services.X.circuitBreaker`: hystrix semantics as go-chassis runs them. Defaults are the
 * values of go-chassis' cb_config.go (the code path Mesher actually runs), stated here once.
 */
import * as v from "valibot";
import { Duration } from "../../config/duration.ts";
import type { Ctx } from "../../pipeline/types.ts";

const d = v.description;
const Status = v.pipe(v.number(), v.integer(), v.minValue(100), v.maxValue(599));

/** An inline fallback: answers in place of the upstream when the breaker rejects. */
export type Fallback = (ctx: Ctx, reason: "circuit_open" | "max_concurrent") => Response | Promise<Response>;

export const CircuitBreakerSchema = v.strictObject({
  scope: v.optional(
    v.pipe(v.picklist(["service", "endpoint", "route"]), d("what one breaker guards: the whole service, each endpoint, or each route")),
    "service",
  ),
  requestVolumeThreshold: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(1), d("requests in the rolling window before the breaker may trip")),
    20,
  ),
  errorThresholdPercentage: v.optional(
    v.pipe(v.number(), v.minValue(0), v.maxValue(100), d("failure share (%) in the window that opens the breaker")),
    50,
  ),
  sleepWindow: v.optional(v.pipe(Duration, d("how long the breaker stays open before one probe request")), "15s"),
  rollingWindow: v.optional(v.pipe(Duration, d("window over which failures are counted (10 buckets)")), "10s"),
  maxConcurrent: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(0), d("requests in flight allowed (bulkhead); more are rejected; 0: no limit")),
    1000,
  ),
  failureStatuses: v.optional(
    v.pipe(v.array(Status), d("response statuses counted as failures (errors such as connect failures always count)")),
    [500, 502, 503, 504],
  ),
  fallback: v.optional(
    v.pipe(
      v.union(
        [v.picklist(["error", "empty"]), v.custom<Fallback>((x) => typeof x === "function", "a function (ctx, reason) => Response")],
        '"error" (503 circuit_open), "empty" (200, empty body) or a function (ctx, reason) => Response',
      ),
      d("what a rejected request gets"),
    ),
    "error",
  ),
});

export type CircuitBreakerOptions = v.InferOutput<typeof CircuitBreakerSchema>;
