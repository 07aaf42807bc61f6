import * as v from "valibot";
import { Duration } from "../../config/duration.ts";

/** `services.X.timeout`: time allowed to response headers, all retries included; 0: none. */
export const TimeoutSchema = v.pipe(
  Duration,
  v.description("time allowed until response headers, retries included (0: no limit); streams are not cut after headers"),
);
