/** `services.X.outlierDetection`: Envoy's consecutive-error ejection, with Envoy's defaults. */
import * as v from "valibot";
import { Duration } from "../../config/duration.ts";

const d = v.description;
const Count = v.pipe(v.number(), v.integer(), v.minValue(0));

export const OutlierDetectionSchema = v.strictObject({
  consecutive5xx: v.optional(v.pipe(Count, d("5xx answers or gateway errors in a row that eject an endpoint (0: off)")), 5),
  consecutiveGatewayErrors: v.optional(
    v.pipe(Count, d("502/503/504, connect failures, resets and timeouts in a row that eject (0: off)")),
    5,
  ),
  baseEjectionTime: v.optional(v.pipe(Duration, d("first ejection lasts this; the Nth lasts N times as long")), "30s"),
  maxEjectionTime: v.optional(v.pipe(Duration, d("cap of one ejection")), "300s"),
  maxEjectionPercent: v.optional(
    v.pipe(v.number(), v.minValue(0), v.maxValue(100), d("most endpoints of the service ejected at once, in % (at least one may be)")),
    10,
  ),
});

export type OutlierDetectionOptions = v.InferOutput<typeof OutlierDetectionSchema>;
