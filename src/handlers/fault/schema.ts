/**
 * Fault injection schema (go-chassis `fault-inject` / Istio HTTPFaultInjection): delay first,
 * then abort, each by percent.
 */
import * as v from "valibot";
import { Duration } from "../../config/duration.ts";

const d = v.description;
const Percent = v.pipe(v.number(), v.minValue(0), v.maxValue(100));

export const FaultSchema = v.strictObject({
  delay: v.optional(
    v.strictObject({
      percent: v.optional(v.pipe(Percent, d("share of requests delayed, 0..100")), 100),
      fixedDelay: v.pipe(Duration, d("how long to delay")),
    }),
  ),
  abort: v.optional(
    v.strictObject({
      percent: v.optional(v.pipe(Percent, d("share of requests aborted, 0..100")), 100),
      httpStatus: v.pipe(v.number(), v.integer(), v.minValue(100), v.maxValue(599), d("status answered")),
    }),
  ),
  fromHeaders: v.optional(
    v.pipe(v.boolean(), d("honour Envoy's x-envoy-fault-* request headers")),
    false,
  ),
});

export type FaultOptions = v.InferOutput<typeof FaultSchema>;
