/**
 * Compiles `match` objects into predicates once, at config load: regexes built, names
 * lower-cased, operators turned into closures. The per-request path only reads values.
 */
import type { Ctx } from "../../pipeline/types.ts";
import type { Match, ValueMatch } from "./schema.ts";

/** What a request looks like to a match; the query is parsed only when a rule asks. */
export interface RequestView {
  readonly ctx: Ctx;
  /** Path without the query. */
  readonly path: string;
  query(): URLSearchParams;
}

export function requestView(ctx: Ctx): RequestView {
  const q = ctx.path.indexOf("?");
  let params: URLSearchParams | undefined;
  return {
    ctx,
    path: q < 0 ? ctx.path : ctx.path.slice(0, q),
    query: () => (params ??= new URLSearchParams(q < 0 ? "" : ctx.path.slice(q + 1))),
  };
}

export interface CompiledMatch {
  test(view: RequestView): boolean;
  /** The prefix `path.prefix` matched, for `rewrite.prefix`. */
  readonly pathPrefix?: string;
}

type ValueTest = (value: string | null) => boolean;

const INT_RE = /^-?\d+$/;

/** Anchors a pattern: the whole value must match (Envoy and Istio; Mesher's unanchored form is translated on import). */
export function anchored(pattern: string, ignoreCase: boolean): RegExp {
  return new RegExp(`^(?:${pattern})$`, ignoreCase ? "is" : "s");
}

/**
 * One header or query value against its operators, all of which must hold. A missing value
 * reads as "" (Mesher), except for `present`. No operator at all means "present" (Istio `{}`).
 */
export function compileValue(m: ValueMatch): ValueTest {
  const ci = m.caseInsensitive;
  const norm = ci ? (s: string) => s.toUpperCase() : (s: string) => s;
  const tests: ValueTest[] = [];
  let any = false;
  if (m.present !== undefined) {
    const want = m.present;
    tests.push((x) => (x !== null) === want);
    any = true;
  }
  const str = (op: string | undefined, f: (value: string, expr: string) => boolean) => {
    if (op === undefined) return;
    any = true;
    const expr = norm(op);
    tests.push((x) => f(norm(x ?? ""), expr));
  };
  str(m.exact, (x, e) => x === e);
  str(m.prefix, (x, e) => x.startsWith(e));
  str(m.suffix, (x, e) => x.endsWith(e));
  str(m.contains, (x, e) => x.includes(e));
  str(m.noEqu, (x, e) => x !== e);
  if (m.regex !== undefined) {
    const re = anchored(m.regex, ci);
    tests.push((x) => re.test(x ?? ""));
    any = true;
  }
  const num = (op: number | undefined, f: (value: number, expr: number) => boolean) => {
    if (op === undefined) return;
    any = true;
    // go-chassis compares integers; a value that is not one matches nothing.
    tests.push((x) => x !== null && INT_RE.test(x) && f(Number(x), op));
  };
  num(m.greater, (x, e) => x > e);
  num(m.less, (x, e) => x < e);
  num(m.noLess, (x, e) => x >= e);
  num(m.noGreater, (x, e) => x <= e);
  if (!any) return (x) => x !== null;
  if (tests.length === 1) return tests[0]!;
  return (x) => {
    for (const t of tests) if (!t(x)) return false;
    return true;
  };
}

function compileHeaders(headers: Record<string, ValueMatch>): Array<[name: string, test: ValueTest]> {
  // Header names are case-insensitive here (Mesher looked them up by canonical key; see docs).
  return Object.entries(headers).map(([name, m]) => [name.toLowerCase(), compileValue(m)]);
}

function sourceTag(ctx: Ctx, key: string): string | undefined {
  const s = ctx.source;
  if (!s) return undefined;
  return s.tags?.[key] ?? (key === "version" ? s.version : key === "app" ? s.app : undefined);
}

/** Compiles one match object; an empty one matches every request. */
export function compileMatch(m: Match): CompiledMatch {
  const tests: Array<(view: RequestView) => boolean> = [];
  if (m.source !== undefined) {
    const name = m.source;
    tests.push((r) => r.ctx.source?.name === name);
  }
  if (m.sourceTags) {
    const want = Object.entries(m.sourceTags);
    tests.push((r) => want.every(([k, val]) => sourceTag(r.ctx, k) === val));
  }
  if (m.method) {
    const methods = m.method;
    tests.push((r) => methods.includes(r.ctx.method.toUpperCase()));
  }
  let pathPrefix: string | undefined;
  if (m.path) {
    const p = m.path;
    const ci = p.caseInsensitive;
    if (p.exact !== undefined) {
      const want = ci ? p.exact.toLowerCase() : p.exact;
      tests.push(ci ? (r) => r.path.toLowerCase() === want : (r) => r.path === want);
    } else if (p.prefix !== undefined) {
      const want = ci ? p.prefix.toLowerCase() : p.prefix;
      pathPrefix = p.prefix;
      tests.push(ci ? (r) => r.path.toLowerCase().startsWith(want) : (r) => r.path.startsWith(want));
    } else {
      const re = anchored(p.regex!, ci);
      tests.push((r) => re.test(r.path));
    }
  }
  if (m.headers) {
    const hs = compileHeaders(m.headers);
    tests.push((r) => hs.every(([name, t]) => t(r.ctx.headers.get(name))));
  }
  if (m.withoutHeaders) {
    const hs = compileHeaders(m.withoutHeaders);
    tests.push((r) => !hs.some(([name, t]) => t(r.ctx.headers.get(name))));
  }
  if (m.query) {
    const qs = Object.entries(m.query).map(([name, vm]) => [name, compileValue(vm)] as const);
    tests.push((r) => {
      const q = r.query();
      return qs.every(([name, t]) => t(q.get(name)));
    });
  }
  const test =
    tests.length === 0
      ? () => true
      : (r: RequestView) => {
          for (const t of tests) if (!t(r)) return false;
          return true;
        };
  return { test, pathPrefix };
}
