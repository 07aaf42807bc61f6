/** Token-bucket rate limits: `services.X.rateLimit` (consumer side) and `rateLimit.provider`. */
import * as v from "valibot";


const d = v.description;
const Rate = v.pipe(v.number(), v.minValue(0), d("requests per second allowed (0: none)"));
const Burst = v.pipe(v.number(), v.integer(), v.minValue(1), d("bucket size: requests allowed at once after a quiet spell (default: the rate, at least 1)"));

const Key = v.union(
  [v.picklist(["global", "source", "clientIp"]), v.strictObject({ header: v.pipe(v.string(), v.minLength(1)) })],
  '"global", "source" (caller service), "clientIp", or { header: "name" }',
);

const limitEntries = {
  rate: Rate,
  burst: v.optional(Burst),
  by: v.optional(v.pipe(Key, d("one bucket for all requests, or one per caller service, client address or header value"))),
  maxKeys: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), d("buckets kept when keyed (least recently used dropped)")), 10000),
};

export const RateLimitSchema = v.strictObject(limitEntries);

export const ProviderRateLimitSchema = v.strictObject({
  ...limitEntries,
  rate: v.optional(Rate),
  sources: v.optional(
    v.pipe(
      v.record(v.string(), v.strictObject({ rate: Rate, burst: v.optional(Burst) })),
      d("a rate per caller service (Mesher's Provider.qps.limit.<source>); others get `rate`"),
    ),
    {},
  ),
});

export const GlobalRateLimitSchema = v.strictObject({
  consumer: v.optional(v.pipe(RateLimitSchema, d("default limit for calls to every service without its own"))),
  provider: v.optional(v.pipe(ProviderRateLimitSchema, d("limit on calls reaching the local app, by default per caller service"))),
});

export type RateLimitOptions = v.InferOutput<typeof RateLimitSchema>;
export type ProviderRateLimitOptions = v.InferOutput<typeof ProviderRateLimitSchema>;
