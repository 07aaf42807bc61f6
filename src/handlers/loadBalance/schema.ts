/**
 * `services.X.loadBalancer` (and the top-level default): a balancer name, or `{ kind, ...options }`.
 */
import * as v from "valibot";
import { Duration } from "../../config/duration.ts";

const d = v.description;
const Count = v.pipe(v.number(), v.integer(), v.minValue(1));

// consistentHash needs to know what to hash, so it has no plain-name form.
const Plain = v.picklist(["roundRobin", "random", "weightedRoundRobin", "leastRequest", "weightedResponse", "sessionSticky"]);

const Options = v.variant(
  "kind",
  [
    v.strictObject({ kind: v.picklist(["roundRobin", "random", "weightedRoundRobin", "leastRequest"]) }),
    v.strictObject({
      kind: v.literal("weightedResponse"),
      interval: v.optional(v.pipe(Duration, d("how often endpoints are re-ranked by average latency")), "30s"),
      percent: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(100), d("share of picks sent to the fastest endpoint")), 70),
      samples: v.optional(v.pipe(Count, d("latencies averaged per endpoint")), 10),
    }),
    v.strictObject({
      kind: v.literal("sessionSticky"),
      cookie: v.optional(v.pipe(v.string(), v.minLength(1), d('cookie naming the session (default "mesher-session" when no header is given)'))),
      header: v.optional(v.pipe(v.string(), v.minLength(1), d("request header naming the session"))),
      sessionTimeout: v.optional(v.pipe(Duration, d("an idle session is forgotten after this")), "30s"),
      failures: v.optional(v.pipe(Count, d("failures in a row after which the session moves")), 5),
      maxSessions: v.optional(v.pipe(Count, d("sessions remembered (least recently used dropped)")), 10000),
    }),
    v.pipe(
      v.strictObject({
        kind: v.literal("consistentHash"),
        header: v.optional(v.pipe(v.string(), v.minLength(1), d("hash this request header"))),
        cookie: v.optional(v.pipe(v.string(), v.minLength(1), d("hash this cookie"))),
        sourceIp: v.optional(v.pipe(v.boolean(), d("hash the client address (after header and cookie)")), false),
        replicas: v.optional(v.pipe(Count, d("ring points per unit of endpoint weight")), 160),
      }),
      v.check((o) => !!(o.header || o.cookie || o.sourceIp), "consistentHash needs header, cookie or sourceIp: true"),
    ),
  ],
  "a balancer kind",
);

export const LoadBalancerSchema = v.pipe(
  v.union([Plain, Options], "a balancer name (roundRobin, random, weightedRoundRobin, leastRequest, weightedResponse, sessionSticky) or { kind, ...options } (consistentHash needs options)"),
  v.transform((x) => (typeof x === "string" ? v.parse(Options, { kind: x }) : x)),
  d("how an endpoint of the service is chosen"),
);

export type LoadBalancerOptions = v.InferOutput<typeof LoadBalancerSchema>;
