/**
 * Schema of edge mode: the `ingress` rules (Mesher's mesher.ingress.rule.http, plus Envoy-style
 * prefix/exact/regex path and header matches, path rewrites and weighted services) and the
 * extra listener addresses (edge, gRPC).
 *
 * schema.ts calls these factories with its own ServiceName/Address schemas: importing them
 * from schema.ts here would be a circular import.
 */
import * as v from "valibot";
import { Regex } from "../config/regex.ts";

const d = v.description;

const PathText = v.pipe(v.string(), v.startsWith("/", 'a path starting with "/"'));

export const HeaderMatchSchema = v.pipe(
  v.strictObject({
    name: v.pipe(v.string(), v.minLength(1), d("header name (case-insensitive)")),
    exact: v.optional(v.pipe(v.string(), d("the value equals this"))),
    prefix: v.optional(v.pipe(v.string(), d("the value starts with this"))),
    suffix: v.optional(v.pipe(v.string(), d("the value ends with this"))),
    contains: v.optional(v.pipe(v.string(), d("the value contains this"))),
    regex: v.optional(v.pipe(Regex, d("the whole value matches this regular expression"))),
    present: v.optional(v.pipe(v.boolean(), d("true: the header is sent (any value); false: it is not"))),
    invert: v.optional(v.pipe(v.boolean(), d("negates the match (Envoy's invert_match)")), false),
  }),
  v.check(
    (h) => [h.exact, h.prefix, h.suffix, h.contains, h.regex, h.present].filter((x) => x !== undefined).length <= 1,
    "at most one of exact, prefix, suffix, contains, regex, present",
  ),
);

export const PathMatchSchema = v.union(
  [
    v.strictObject({ prefix: v.pipe(PathText, d("the path starts with this (plain string prefix, as Envoy)")) }),
    v.strictObject({ exact: v.pipe(PathText, d("the path equals this")) }),
    v.strictObject({ regex: v.pipe(Regex, d("the whole path matches this regular expression (Envoy's safe_regex)")) }),
  ],
  "a path match: { prefix }, { exact } or { regex }",
);

export const RewriteSchema = v.union(
  [
    v.strictObject({ prefix: v.pipe(v.string(), d("replaces the matched path.prefix (Envoy's prefix_rewrite)")) }),
    v.strictObject({
      regex: v.pipe(Regex, d("every match of this in the path is replaced")),
      substitution: v.pipe(v.string(), d("the replacement; $1 (or \\1) names a group")),
    }),
  ],
  "a path rewrite: { prefix } or { regex, substitution }",
);

/** The ingress rule list, built with the caller's ServiceName schema. */
export function ingressSchema<S extends v.GenericSchema<string, string>>(serviceName: S) {
  const Weighted = v.strictObject({
    name: v.pipe(serviceName, d("service name")),
    weight: v.pipe(v.number(), v.integer(), v.minValue(0), d("relative share of requests")),
  });
  const Rule = v.pipe(
    v.strictObject({
      name: v.optional(v.pipe(v.string(), d("a name for the rule, for logs and errors"))),
      host: v.optional(
        v.pipe(
          v.union([v.string(), v.array(v.string())], "a host name or a list of them"),
          d('Host the request must carry: exact (case-insensitive), "*.example.com", "api.*" or "*"; without a port, any port matches'),
        ),
      ),
      apiPath: v.optional(v.pipe(Regex, d("Mesher's apiPath: a regular expression searched in the path (unanchored)"))),
      path: v.optional(v.pipe(PathMatchSchema, d("prefix, exact or regex (anchored) path match"))),
      caseSensitive: v.optional(v.pipe(v.boolean(), d("path matching is case-sensitive")), true),
      headers: v.optional(v.pipe(v.array(HeaderMatchSchema), d("every one of these header matches must hold")), []),
      service: v.pipe(
        v.union([serviceName, v.pipe(v.array(Weighted), v.minLength(1))], "a service name or [{ name, weight }]"),
        d("the service to route to, or weighted services (a share of requests each)"),
      ),
      redirectPath: v.optional(v.pipe(PathText, d("Mesher's redirectPath: replaces the whole path (the query is kept)"))),
      rewrite: v.optional(v.pipe(RewriteSchema, d("rewrites the path before it goes upstream"))),
      port: v.optional(
        v.pipe(
          v.union([v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535)), v.pipe(v.string(), v.regex(/^\d{1,5}$/))], "a port number"),
          d("the service's port, sent as X-Forwarded-Port (Mesher's service.port.value)"),
        ),
      ),
    }),
    v.check((r) => !(r.apiPath !== undefined && r.path !== undefined), "apiPath or path, not both"),
    v.check((r) => !(r.redirectPath !== undefined && r.rewrite !== undefined), "redirectPath or rewrite, not both"),
    v.check((r) => !(r.rewrite && "prefix" in r.rewrite && !(r.path && "prefix" in r.path)), "rewrite.prefix needs a path.prefix match"),
  );
  return v.optional(
    v.pipe(v.array(Rule), d("edge mode: routes external requests to services; first match wins")),
    [],
  );
}

/** Listener addresses of edge mode and gRPC, spread into `listen`. */
export function edgeListenEntries<A extends v.GenericSchema<string, string>>(address: A) {
  return {
    edge: v.optional(
      v.pipe(address, d("edge mode: where external clients connect (the API gateway)")),
      "127.0.0.1:30080",
    ),
    grpc: v.optional(
      v.pipe(
        v.union([address, v.literal(true)], 'an address "host:port", or true for 127.0.0.1:40101'),
        d("gRPC consumer listener (h2c, or TLS with listen.tls.grpc): the app's gRPC calls, service named by :authority"),
      ),
    ),
    grpcProvider: v.optional(
      v.pipe(address, d("gRPC provider listener (h2c, or TLS with listen.tls.grpcProvider): other sidecars' gRPC calls, sent to service.ports.grpc")),
    ),
  };
}

/** Mesher's gRPC listener address. */
export const DEFAULT_GRPC_ADDRESS = "127.0.0.1:40101";

const concrete = ingressSchema(v.string());
export type IngressRule = v.InferOutput<typeof concrete>[number];
export type HeaderMatch = v.InferOutput<typeof HeaderMatchSchema>;
