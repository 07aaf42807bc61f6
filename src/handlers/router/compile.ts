/**
 * Compiles a service's route rules into a table, once per config load: rules sorted by
 * precedence (stable), matches and actions turned into closures, one weighted round-robin
 * per rule. Reloading the config builds a new table, so weight cycles restart (as
 * go-chassis resets its weight pools when rules change).
 */
import type { FaultOptions } from "../fault/schema.ts";
import type { RetryOptions } from "../retry/schema.ts";
import { LATEST } from "./latest.ts";
import { compileMatch, type CompiledMatch, type RequestView } from "./match.ts";
import type { Mirror, RouteRule } from "./schema.ts";
import { smoothWrr, type Wrr } from "./wrr.ts";

/** One destination a rule can pick. */
export interface Destination {
  /** Tags the endpoint must carry; undefined: any endpoint. */
  tags?: Record<string, string>;
  /** Another service to send to. */
  service?: string;
}

export interface CompiledMirror {
  service?: string;
  tags?: Record<string, string>;
  /** True when this request is to be copied (deterministic: exactly `percent` in every 100). */
  take(): boolean;
}

export interface CompiledRule {
  readonly name: string;
  readonly precedence: number;
  /** Any may match; empty: every request. */
  readonly matches: readonly CompiledMatch[];
  /** Picks the destination; undefined when the rule lists none (any endpoint). */
  readonly destinations?: Wrr<Destination>;
  readonly service?: string;
  readonly timeout?: number;
  readonly retry?: RetryOptions;
  readonly fault?: FaultOptions;
  readonly rewrite?: (path: string, matched: CompiledMatch | undefined) => string;
  readonly requestHeaders?: (h: Headers) => void;
  readonly responseHeaders?: (h: Headers) => void;
  readonly mirrors: readonly CompiledMirror[];
}

type HeaderOps = NonNullable<NonNullable<RouteRule["headers"]>["request"]>;

/** Remove, then set, then add (so a rule may replace a header it also removes by name). */
function compileHeaderOps(ops: HeaderOps | undefined): ((h: Headers) => void) | undefined {
  if (!ops) return undefined;
  const remove = ops.remove ?? [];
  const set = Object.entries(ops.set ?? {});
  const add = Object.entries(ops.add ?? {});
  if (!remove.length && !set.length && !add.length) return undefined;
  return (h) => {
    for (const name of remove) h.delete(name);
    for (const [name, value] of set) h.set(name, value);
    for (const [name, value] of add) h.append(name, value);
  };
}

function compileRewrite(r: RouteRule["rewrite"]): CompiledRule["rewrite"] {
  if (!r) return undefined;
  const withQuery = (f: (p: string, m: CompiledMatch | undefined) => string) => (path: string, m: CompiledMatch | undefined) => {
    const q = path.indexOf("?");
    return q < 0 ? f(path, m) : f(path.slice(0, q), m) + path.slice(q);
  };
  if (r.prefix !== undefined) {
    const to = r.prefix;
    return withQuery((p, m) => {
      if (m?.pathPrefix === undefined) return to;
      const rest = p.slice(m.pathPrefix.length);
      // "/api/" -> "/" on "/api/x" gives "/x"; avoid "//x" when both sides carry the slash.
      return to.endsWith("/") && rest.startsWith("/") ? to + rest.slice(1) : to + rest;
    });
  }
  const re = new RegExp(r.regex!.pattern, "g");
  const sub = r.regex!.substitution;
  return withQuery((p) => p.replace(re, sub) || "/");
}

function compileMirror(m: Mirror): CompiledMirror {
  let acc = 0;
  const percent = m.percent;
  return {
    service: m.service,
    tags: m.tags,
    take() {
      if (percent >= 100) return true;
      acc += percent;
      if (acc < 100) return false;
      acc -= 100;
      return true;
    },
  };
}

/** The destinations of a rule with their weights; Mesher's remainder goes to version "latest". */
export function destinationsOf(route: RouteRule["route"]): { items: Destination[]; weights: number[] } | undefined {
  if (route.length === 0) return undefined;
  const items: Destination[] = route.map((r) => ({
    tags: Object.keys(r.tags).length ? r.tags : undefined,
    service: r.service,
  }));
  if (route.every((r) => r.weight === undefined)) return { items, weights: items.map(() => 1) };
  const weights = route.map((r) => r.weight!);
  const sum = weights.reduce((a, b) => a + b, 0);
  if (sum < 100) {
    items.push({ tags: { version: LATEST } });
    weights.push(100 - sum);
  }
  return { items, weights };
}

function compileRule(rule: RouteRule, index: number): CompiledRule {
  const matchList = Array.isArray(rule.match) ? rule.match : [rule.match];
  const dest = destinationsOf(rule.route);
  const mirrors = rule.mirror === undefined ? [] : Array.isArray(rule.mirror) ? rule.mirror : [rule.mirror];
  return {
    name: rule.name ?? String(index),
    precedence: rule.precedence,
    matches: matchList.map(compileMatch),
    destinations: dest && smoothWrr(dest.items, dest.weights),
    service: rule.service,
    timeout: rule.timeout,
    retry: rule.retry,
    fault: rule.fault,
    rewrite: compileRewrite(rule.rewrite),
    requestHeaders: compileHeaderOps(rule.headers?.request),
    responseHeaders: compileHeaderOps(rule.headers?.response),
    mirrors: mirrors.map(compileMirror),
  };
}

/** Compiles and orders a service's rules: highest precedence first, ties in written order. */
export function compileRules(rules: readonly RouteRule[]): CompiledRule[] {
  // Array.prototype.sort is stable (ES2019), which keeps ties in the order written.
  return rules.map(compileRule).sort((a, b) => b.precedence - a.precedence);
}

/** The first rule that matches, and which of its match entries did. */
export function findRule(
  rules: readonly CompiledRule[],
  view: RequestView,
): { rule: CompiledRule; matched?: CompiledMatch } | undefined {
  for (const rule of rules) {
    if (rule.matches.length === 0) return { rule };
    for (const m of rule.matches) if (m.test(view)) return { rule, matched: m };
  }
  return undefined;
}
