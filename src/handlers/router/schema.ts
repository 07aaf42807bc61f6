/**
 * Route rules (`services.X.routes`): go-chassis/Mesher `routeRule` semantics (precedence,
 * match on source/sourceTags/headers, tag routes with percent weights) plus the Istio
 * HTTPRoute actions users expect from a mesh (path, method, query match; rewrite, header
 * actions, per-route timeout/retry/fault, mirroring, another destination service).
 */
import * as v from "valibot";
import { ServiceName } from "../../config/names.ts";
import { Regex } from "../../config/regex.ts";
import { Duration } from "../../config/duration.ts";
import { FaultSchema } from "../fault/schema.ts";
import { RetrySchema } from "../retry/schema.ts";

const d = v.description;

/** A service name; the same rule as config/schema.ts' ServiceName (not imported: that file imports this one). */

/** Numbers in YAML (`exact: 1`) are compared as their text. */
const Text = v.pipe(v.union([v.string(), v.number()], "a string"), v.transform(String));
const Int = v.pipe(
  v.union([v.pipe(v.number(), v.integer()), v.pipe(v.string(), v.regex(/^-?\d+$/))], "an integer"),
  v.transform(Number),
);
/** Mesher writes `caseInsensitive: "true"`; a boolean is accepted too. */
const Flag = v.pipe(
  v.union([v.boolean(), v.picklist(["true", "false"])], 'true or false'),
  v.transform((x) => x === true || x === "true"),
);

/** Operators on one header or query value; every operator given must hold (AND). */
export const ValueMatchSchema = v.strictObject({
  exact: v.optional(v.pipe(Text, d("equals"))),
  prefix: v.optional(v.pipe(Text, d("starts with"))),
  suffix: v.optional(v.pipe(Text, d("ends with"))),
  contains: v.optional(v.pipe(Text, d("contains"))),
  regex: v.optional(v.pipe(Regex, d("matches the whole value (anchored, as Envoy and Istio)"))),
  noEqu: v.optional(v.pipe(Text, d("does not equal"))),
  greater: v.optional(v.pipe(Int, d("an integer greater than this"))),
  less: v.optional(v.pipe(Int, d("an integer less than this"))),
  noLess: v.optional(v.pipe(Int, d("an integer not less than this"))),
  noGreater: v.optional(v.pipe(Int, d("an integer not greater than this"))),
  present: v.optional(v.pipe(v.boolean(), d("true: must be present; false: must be absent"))),
  caseInsensitive: v.optional(v.pipe(Flag, d("compare ignoring case")), false),
});

export const PathMatchSchema = v.pipe(
  v.strictObject({
    exact: v.optional(v.pipe(v.string(), d("the path (without query) equals this"))),
    prefix: v.optional(v.pipe(v.string(), d("the path starts with this"))),
    regex: v.optional(v.pipe(Regex, d("the whole path matches this"))),
    caseInsensitive: v.optional(v.pipe(Flag, d("compare ignoring case (Istio ignoreUriCase)")), false),
  }),
  v.check((p) => [p.exact, p.prefix, p.regex].filter((x) => x !== undefined).length === 1, "exactly one of exact, prefix, regex"),
);

const Methods = v.pipe(
  v.union([v.string(), v.array(v.string())], "a method or a list of methods"),
  v.transform((m) => (Array.isArray(m) ? m : [m]).map((x) => x.toUpperCase())),
);

export const MatchSchema = v.strictObject({
  source: v.optional(v.pipe(v.string(), d("the calling service's name"))),
  sourceTags: v.optional(
    v.pipe(v.record(v.string(), v.string()), d("tags the caller must carry (version and app included)")),
  ),
  headers: v.optional(
    v.pipe(v.record(v.string(), ValueMatchSchema), d("request headers by name (case-insensitive); a missing header reads as empty")),
  ),
  withoutHeaders: v.optional(
    v.pipe(v.record(v.string(), ValueMatchSchema), d("the rule does not match when any of these header matches hold (Istio)")),
  ),
  path: v.optional(v.pipe(PathMatchSchema, d("the request path, without the query"))),
  method: v.optional(v.pipe(Methods, d('"GET" or ["GET", "HEAD"]'))),
  query: v.optional(v.pipe(v.record(v.string(), ValueMatchSchema), d("query parameters by name"))),
});

const Tags = v.record(v.string(), v.string());

export const RouteDestinationSchema = v.strictObject({
  tags: v.optional(v.pipe(Tags, d("the endpoint must carry all of these tags; {} or absent: any endpoint")), {}),
  weight: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(100), d("percent of the rule's traffic")),
  ),
  service: v.optional(v.pipe(ServiceName, d("send to this service instead (Istio destination.host)"))),
});

/** Weights: all or none; the sum at most 100 (the rest goes to version "latest", as Mesher). */
const RouteList = v.pipe(
  v.array(RouteDestinationSchema),
  v.check((r) => r.every((x) => x.weight === undefined) || r.every((x) => x.weight !== undefined), "a weight on every entry, or on none (equal shares)"),
  v.check((r) => r.reduce((s, x) => s + (x.weight ?? 0), 0) <= 100, "weights summing to at most 100"),
);

const HeaderOps = v.strictObject({
  set: v.optional(v.pipe(v.record(v.string(), v.string()), d("set (replace) these headers"))),
  add: v.optional(v.pipe(v.record(v.string(), v.string()), d("append these header values"))),
  remove: v.optional(v.pipe(v.array(v.string()), d("remove these headers"))),
});

export const RewriteSchema = v.pipe(
  v.strictObject({
    prefix: v.optional(
      v.pipe(v.string(), d("replaces the prefix matched by match.path.prefix; without a prefix match, the whole path (Istio rewrite.uri)")),
    ),
    regex: v.optional(
      v.pipe(
        v.strictObject({
          pattern: v.pipe(Regex, d("regular expression applied to the path")),
          substitution: v.pipe(v.string(), d("replacement; $1.. name groups")),
        }),
        d("replaces every match in the path (Istio uriRegexRewrite)"),
      ),
    ),
  }),
  v.check((r) => (r.prefix === undefined) !== (r.regex === undefined), "exactly one of prefix, regex"),
);

export const MirrorSchema = v.strictObject({
  service: v.optional(v.pipe(ServiceName, d("service that gets the copy; default: the request's own"))),
  tags: v.optional(v.pipe(Tags, d("tags the mirror endpoint must carry"))),
  percent: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(100), d("share of requests copied")), 100),
});

/**
 * One item or a list of them. `v.lazy` picks the schema by the input's shape, so a mistake
 * inside is reported at its own path (a union would report only "Object | Array").
 */
function oneOrList<T extends v.GenericSchema>(item: T) {
  const list = v.array(item);
  return v.lazy((input: unknown) => (Array.isArray(input) ? list : item)) as unknown as v.GenericSchema<
    v.InferInput<T> | v.InferInput<T>[],
    v.InferOutput<T> | v.InferOutput<T>[]
  >;
}

export const RouteRuleSchema = v.strictObject({
  name: v.optional(v.pipe(v.string(), d("a name for metrics and logs; default: the rule's index"))),
  precedence: v.optional(v.pipe(v.number(), v.integer(), d("higher is tried first; ties keep their order")), 0),
  match: v.optional(
    v.pipe(
      oneOrList(MatchSchema),
      d("what the request must look like; a list matches when any entry does; absent: every request"),
    ),
    {},
  ),
  route: v.optional(
    v.pipe(RouteList, d("where matching requests go: tags and percent weights, spread by smooth weighted round-robin")),
    [],
  ),
  service: v.optional(v.pipe(ServiceName, d("send matching requests to this service instead"))),
  rewrite: v.optional(v.pipe(RewriteSchema, d("rewrites the path sent upstream (the query is kept)"))),
  headers: v.optional(
    v.pipe(
      v.strictObject({
        request: v.optional(v.pipe(HeaderOps, d("changes to the request sent upstream"))),
        response: v.optional(v.pipe(HeaderOps, d("changes to the response sent downstream"))),
      }),
      d("header actions"),
    ),
  ),
  timeout: v.optional(v.pipe(Duration, d("overall timeout of matching requests, replacing the service's"))),
  retry: v.optional(v.pipe(RetrySchema, d("retry policy of matching requests, replacing the service's"))),
  fault: v.optional(v.pipe(FaultSchema, d("fault injection for matching requests, replacing the service's"))),
  mirror: v.optional(
    v.pipe(
      oneOrList(MirrorSchema),
      d("fire-and-forget copies of matching requests; responses are ignored"),
    ),
  ),
});

/** The one line config/schema.ts plugs into a service. */
export const RoutesField = v.optional(
  v.pipe(v.array(RouteRuleSchema), d("route rules, tried by precedence (highest first); the first match wins")),
  [],
);

export type RouteRule = v.InferOutput<typeof RouteRuleSchema>;
export type RouteRuleInput = v.InferInput<typeof RouteRuleSchema>;
export type Match = v.InferOutput<typeof MatchSchema>;
export type ValueMatch = v.InferOutput<typeof ValueMatchSchema>;
export type Mirror = v.InferOutput<typeof MirrorSchema>;

/** What the schema cannot check alone: services that rules name must be known. */
export function checkRouteRefs(services: Record<string, { routes: RouteRule[] }>): Array<{ path: string; value: unknown; expected: string }> {
  const problems: Array<{ path: string; value: unknown; expected: string }> = [];
  const known = Object.keys(services);
  const check = (path: string, name: string | undefined) => {
    if (name !== undefined && !(name in services)) {
      problems.push({ path, value: name, expected: `a service under services (${known.join(", ")})` });
    }
  };
  for (const [svc, { routes }] of Object.entries(services)) {
    routes.forEach((rule, i) => {
      const at = `services${/^[A-Za-z_$][\w$]*$/.test(svc) ? `.${svc}` : `[${JSON.stringify(svc)}]`}.routes[${i}]`;
      check(`${at}.service`, rule.service);
      rule.route.forEach((r, j) => check(`${at}.route[${j}].service`, r.service));
      const mirrors = rule.mirror === undefined ? [] : Array.isArray(rule.mirror) ? rule.mirror : [rule.mirror];
      mirrors.forEach((m, j) => check(Array.isArray(rule.mirror) ? `${at}.mirror[${j}].service` : `${at}.mirror.service`, m.service));
    });
  }
  return problems;
}
