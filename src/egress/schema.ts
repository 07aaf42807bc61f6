/** Egress rules: which external hosts the app may reach through its sidecar (Mesher's egress.yaml). */
import * as v from "valibot";
import { RetrySchema } from "../handlers/retry/schema.ts";
import { TimeoutSchema } from "../handlers/timeout/schema.ts";

const d = v.description;

/** A DNS name (RFC 1123 labels), optionally with a leading "*." wildcard, or an IP address. */
const HOST_RE = /^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

export const EgressHost = v.pipe(
  v.string(),
  v.check((h) => HOST_RE.test(h) && h.length <= 253, 'a host name such as "api.example.com" or "*.example.org"'),
  v.toLowerCase(),
);

export const EgressPortSchema = v.strictObject({
  port: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535), d("port the app may reach")),
  protocol: v.optional(
    v.pipe(
      v.string(),
      v.toUpperCase(),
      v.picklist(["HTTP", "HTTPS", "TLS", "TCP"], "HTTP, HTTPS, TLS or TCP"),
      d("HTTP: plain requests through the proxy; HTTPS/TLS/TCP: CONNECT tunnels"),
    ),
    "HTTP",
  ),
});

export const EgressRuleSchema = v.strictObject({
  name: v.optional(v.pipe(v.string(), d("a label for logs (Mesher's egressRule key)"))),
  hosts: v.pipe(
    v.array(EgressHost),
    v.minLength(1, "at least one host"),
    d('exact names, or "*.example.org" for any name under example.org (not example.org itself)'),
  ),
  ports: v.optional(
    v.pipe(v.array(EgressPortSchema), d("ports the app may reach; none listed: 80 (HTTP) and 443 (CONNECT)")),
    [],
  ),
  timeout: v.optional(v.pipe(TimeoutSchema, d("timeout of calls to these hosts (plain HTTP; a CONNECT tunnel is opaque)"))),
  retry: v.optional(v.pipe(RetrySchema, d("retry policy of calls to these hosts (plain HTTP)"))),
});

const Rules = v.array(EgressRuleSchema);

export const EgressSchema = v.pipe(
  v.union(
    [
      Rules,
      v.strictObject({
        allowAll: v.optional(
          v.pipe(v.boolean(), d("let the app reach any host that is not a mesh service (Istio's ALLOW_ANY)")),
          false,
        ),
        rules: v.optional(Rules, []),
      }),
    ],
    "a list of egress rules, or { allowAll?, rules? }",
  ),
  v.transform((x) => (Array.isArray(x) ? { allowAll: false, rules: x } : x)),
);

export type EgressRule = v.InferOutput<typeof EgressRuleSchema>;
export type EgressConfig = v.InferOutput<typeof EgressSchema>;
