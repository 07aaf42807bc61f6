/**
 * The compiled ingress table of edge mode: rules are turned into matcher closures once per
 * config; a request walks them in order and the first match wins (Mesher's gateway.go).
 */
import type { HeaderMatch, IngressRule } from "./ingressSchema.ts";

/** What a matched rule says about one request. */
export interface IngressMatch {
  /** Index of the rule in `ingress` (or its name), for errors and logs. */
  rule: string;
  /** The destination service. */
  service: string;
  /** Path and query to send upstream. */
  path: string;
  /** X-Forwarded-Port for the destination, when the rule names one. */
  port?: string;
}

export interface IngressTable {
  readonly size: number;
  /** The first rule matching, or undefined. `path` is origin-form (path and query). */
  match(host: string | null, path: string, headers: Headers): IngressMatch | undefined;
}

type Test = (path: string) => boolean;

/** Host matcher: exact, "*.suffix", "prefix.*" or "*"; a pattern without a port ignores the port. */
function hostMatcher(host: string | string[] | undefined): ((host: string | null) => boolean) | undefined {
  if (host === undefined) return undefined;
  const tests = (Array.isArray(host) ? host : [host]).map((pattern): ((h: string, bare: string) => boolean) => {
    const p = pattern.toLowerCase();
    const withPort = /:\d+$/.test(p) && !p.endsWith("]");
    if (p === "*") return () => true;
    if (p.startsWith("*")) {
      const suffix = p.slice(1);
      return (h, bare) => (withPort ? h : bare).endsWith(suffix) && (withPort ? h : bare).length > suffix.length;
    }
    if (p.endsWith("*")) {
      const prefix = p.slice(0, -1);
      return (h) => h.startsWith(prefix) && h.length > prefix.length;
    }
    return (h, bare) => (withPort ? h : bare) === p;
  });
  return (raw) => {
    if (!raw) return false;
    const h = raw.toLowerCase();
    const i = h.lastIndexOf(":");
    const bare = i > h.lastIndexOf("]") && i >= 0 ? h.slice(0, i) : h;
    return tests.some((t) => t(h, bare));
  };
}

function pathMatcher(rule: IngressRule): Test | undefined {
  const fold = !rule.caseSensitive;
  if (rule.apiPath !== undefined) {
    const re = new RegExp(rule.apiPath, fold ? "i" : "");
    return (p) => re.test(p);
  }
  const m = rule.path;
  if (!m) return undefined;
  if ("prefix" in m) {
    const prefix = fold ? m.prefix.toLowerCase() : m.prefix;
    return fold ? (p) => p.toLowerCase().startsWith(prefix) : (p) => p.startsWith(prefix);
  }
  if ("exact" in m) {
    const exact = fold ? m.exact.toLowerCase() : m.exact;
    return fold ? (p) => p.toLowerCase() === exact : (p) => p === exact;
  }
  const re = new RegExp(`^(?:${m.regex})$`, fold ? "i" : "");
  return (p) => re.test(p);
}

function headerMatcher(h: HeaderMatch): (headers: Headers) => boolean {
  const name = h.name.toLowerCase();
  let test: (value: string | null) => boolean;
  if (h.exact !== undefined) test = (x) => x === h.exact;
  else if (h.prefix !== undefined) test = (x) => x !== null && x.startsWith(h.prefix!);
  else if (h.suffix !== undefined) test = (x) => x !== null && x.endsWith(h.suffix!);
  else if (h.contains !== undefined) test = (x) => x !== null && x.includes(h.contains!);
  else if (h.regex !== undefined) {
    const re = new RegExp(`^(?:${h.regex})$`);
    test = (x) => x !== null && re.test(x);
  } else if (h.present === false) test = (x) => x === null;
  else test = (x) => x !== null;
  return h.invert ? (headers) => !test(headers.get(name)) : (headers) => test(headers.get(name));
}

/** The path rewrite of a rule; the query string is always kept. */
function rewriter(rule: IngressRule): ((path: string) => string) | undefined {
  if (rule.redirectPath !== undefined) {
    const to = rule.redirectPath;
    return () => to;
  }
  const r = rule.rewrite;
  if (!r) return undefined;
  if ("prefix" in r) {
    const n = (rule.path as { prefix: string }).prefix.length;
    const to = r.prefix;
    return (p) => {
      const rest = p.slice(n);
      // Envoy would give "//items" for prefix "/a" -> "/" on "/a/items"; nobody wants that.
      const out = to.endsWith("/") && rest.startsWith("/") ? to + rest.slice(1) : to + rest;
      return out.startsWith("/") ? out : `/${out}`;
    };
  }
  const re = new RegExp(r.regex, "g");
  // Envoy writes RE2 groups as \1; JavaScript's replace wants $1.
  const sub = r.substitution.replace(/\\(\d)/g, "$$$1");
  return (p) => p.replace(re, sub);
}

/** Picks a service: the one named, or one of the weighted ones by weight. */
function servicePicker(service: IngressRule["service"]): () => string {
  if (typeof service === "string") return () => service;
  const total = service.reduce((s, w) => s + w.weight, 0);
  if (total === 0) return () => service[0]!.name;
  return () => {
    let x = Math.random() * total;
    for (const w of service) if ((x -= w.weight) < 0) return w.name;
    return service[service.length - 1]!.name;
  };
}

export function compileIngress(rules: readonly IngressRule[]): IngressTable {
  const compiled = rules.map((rule, i) => ({
    rule: rule.name ?? String(i),
    host: hostMatcher(rule.host),
    path: pathMatcher(rule),
    headers: rule.headers.map(headerMatcher),
    rewrite: rewriter(rule),
    pick: servicePicker(rule.service),
    port: rule.port === undefined ? undefined : String(rule.port),
  }));
  return {
    size: compiled.length,
    match(host, target, headers) {
      const q = target.indexOf("?");
      const path = q < 0 ? target : target.slice(0, q);
      for (const c of compiled) {
        if (c.host && !c.host(host)) continue;
        if (c.path && !c.path(path)) continue;
        if (c.headers.length && !c.headers.every((h) => h(headers))) continue;
        const upstreamPath = c.rewrite ? c.rewrite(path) + (q < 0 ? "" : target.slice(q)) : target;
        return { rule: c.rule, service: c.pick(), path: upstreamPath, port: c.port };
      }
      return undefined;
    },
  };
}
