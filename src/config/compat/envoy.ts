/**
 * Imports an Envoy v3 static bootstrap (as sota-mesh does): the one listener's
 * http_connection_manager route table becomes edge mode's `ingress` rules, and
 * `static_resources.clusters` become `services` with their `load_assignment` endpoints.
 *
 * - virtual hosts: `domains` become the rules' `host`; since mesher walks one flat list, the
 *   rules are ordered as Envoy picks a virtual host: exact domains first, then `*.suffix`
 *   (longest first), then `prefix.*`, then `*`. One difference: when a host picks a virtual host
 *   but none of its routes match, Envoy answers 404, mesher goes on to the next rules.
 * - routes: `match.prefix | path | safe_regex | path_separated_prefix`, `case_sensitive`,
 *   `headers`; `route.cluster | weighted_clusters`, `prefix_rewrite`, `regex_rewrite`.
 *   Weighted clusters become one rule with weighted services.
 * - clusters: `type` STATIC, STRICT_DNS or LOGICAL_DNS (names resolve when connecting),
 *   `lb_policy` (ROUND_ROBIN, RANDOM, LEAST_REQUEST; RING_HASH and MAGLEV as consistentHash
 *   on the routes' hash_policy), `load_balancing_weight`, `connect_timeout` (checked; mesher
 *   has no separate connect timeout, so it is not applied).
 * - `admin.address` becomes `listen.admin`; `node` and `layered_runtime` are ignored.
 *
 * Anything else that changes behaviour is a ConfigError naming the field.
 */
import { SERVICE_NAME_RE } from "../names.ts";
import { ConfigError } from "../errors.ts";
import type { UserConfig } from "../schema.ts";

type Obj = Record<string, unknown>;
type Rule = NonNullable<UserConfig["ingress"]>[number];
type HeaderMatch = NonNullable<Rule["headers"]>[number];
const isObj = (x: unknown): x is Obj => x !== null && typeof x === "object" && !Array.isArray(x);

/** Fields read and ignored: names, stats and logging that do not change where requests go. */
const IGNORED = new Set(["name", "stat_prefix", "access_log", "access_log_path", "codec_type", "generate_request_id", "use_remote_address", "server_name", "dns_lookup_family", "cluster_name", "xff_num_trusted_hops", "normalize_path", "merge_slashes"]);

class Reader {
  constructor(readonly file: string) {}
  fail(path: string, value: unknown, expected: string): never {
    throw new ConfigError([{ path, value, expected }], this.file);
  }
  /** An object whose every key is known (or ignored); unknown keys are errors. */
  obj(x: unknown, path: string, known: readonly string[]): Obj {
    if (!isObj(x)) this.fail(path, x, "a mapping");
    for (const k of Object.keys(x)) {
      if (!known.includes(k) && !IGNORED.has(k)) this.fail(`${path}.${k}`, x[k], `a field mesher can import (${known.join(", ")}); this one is not supported`);
    }
    return x;
  }
  list(x: unknown, path: string): unknown[] {
    if (!Array.isArray(x)) this.fail(path, x, "a list");
    return x;
  }
  str(x: unknown, path: string): string {
    if (typeof x !== "string" || x === "") this.fail(path, x, "a string");
    return x;
  }
  /** A protobuf BoolValue: `false` or `{ value: false }`. */
  bool(x: unknown, path: string): boolean {
    if (isObj(x)) return this.bool(x.value, `${path}.value`);
    if (typeof x !== "boolean") this.fail(path, x, "true or false");
    return x;
  }
  /** A protobuf Duration in JSON form ("0.25s") or { seconds, nanos }. */
  duration(x: unknown, path: string): number {
    if (typeof x === "string" && /^\d+(\.\d+)?s$/.test(x)) return Math.round(Number.parseFloat(x) * 1000);
    if (isObj(x)) return Number(x.seconds ?? 0) * 1000 + Math.round(Number(x.nanos ?? 0) / 1e6);
    return this.fail(path, x, 'a duration such as "0.25s"');
  }
  /** socket_address { address, port_value } as "host:port". */
  socket(x: unknown, path: string): string {
    const a = this.obj(x, path, ["socket_address"]);
    const s = this.obj(a.socket_address, `${path}.socket_address`, ["address", "port_value", "protocol"]);
    if (s.protocol !== undefined && s.protocol !== "TCP") this.fail(`${path}.socket_address.protocol`, s.protocol, "TCP");
    const host = this.str(s.address, `${path}.socket_address.address`);
    const port = s.port_value;
    if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535) this.fail(`${path}.socket_address.port_value`, port, "a port number");
    return `${host.includes(":") ? `[${host}]` : host}:${port}`;
  }
  /** A RegexMatcher { regex, google_re2? }. */
  regex(x: unknown, path: string): string {
    const m = this.obj(x, path, ["regex", "google_re2"]);
    const source = this.str(m.regex, `${path}.regex`);
    try {
      new RegExp(source);
    } catch {
      this.fail(`${path}.regex`, source, "a regular expression JavaScript can read");
    }
    return source;
  }
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

function headerMatch(r: Reader, x: unknown, path: string): HeaderMatch {
  const h = r.obj(x, path, ["name", "exact_match", "prefix_match", "suffix_match", "contains_match", "safe_regex_match", "present_match", "string_match", "invert_match"]);
  const out: HeaderMatch = { name: r.str(h.name, `${path}.name`), invert: h.invert_match === undefined ? false : r.bool(h.invert_match, `${path}.invert_match`) };
  if (h.exact_match !== undefined) out.exact = String(h.exact_match);
  if (h.prefix_match !== undefined) out.prefix = String(h.prefix_match);
  if (h.suffix_match !== undefined) out.suffix = String(h.suffix_match);
  if (h.contains_match !== undefined) out.contains = String(h.contains_match);
  if (h.safe_regex_match !== undefined) out.regex = r.regex(h.safe_regex_match, `${path}.safe_regex_match`);
  if (h.present_match !== undefined) out.present = r.bool(h.present_match, `${path}.present_match`);
  if (h.string_match !== undefined) {
    const sp = `${path}.string_match`;
    const s = r.obj(h.string_match, sp, ["exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"]);
    if (s.ignore_case !== undefined && r.bool(s.ignore_case, `${sp}.ignore_case`)) r.fail(`${sp}.ignore_case`, true, "case-sensitive header matches (ignore_case is not supported)");
    if (s.exact !== undefined) out.exact = String(s.exact);
    if (s.prefix !== undefined) out.prefix = String(s.prefix);
    if (s.suffix !== undefined) out.suffix = String(s.suffix);
    if (s.contains !== undefined) out.contains = String(s.contains);
    if (s.safe_regex !== undefined) out.regex = r.regex(s.safe_regex, `${sp}.safe_regex`);
  }
  // Envoy: a header matcher with no value matcher means "present".
  if ([out.exact, out.prefix, out.suffix, out.contains, out.regex, out.present].every((v) => v === undefined)) out.present = true;
  return out;
}

/** Hash policies seen on routes, per cluster: RING_HASH/MAGLEV clusters need one. */
type HashPolicy = { header?: string; cookie?: string; sourceIp?: boolean };

function hashPolicy(r: Reader, x: unknown, path: string): HashPolicy {
  const list = r.list(x, path);
  const out: HashPolicy = {};
  list.forEach((item, i) => {
    const p = r.obj(item, `${path}[${i}]`, ["header", "cookie", "connection_properties", "terminal"]);
    if (p.header !== undefined) out.header ??= r.str(r.obj(p.header, `${path}[${i}].header`, ["header_name"]).header_name, `${path}[${i}].header.header_name`);
    if (p.cookie !== undefined) out.cookie ??= r.str(r.obj(p.cookie, `${path}[${i}].cookie`, ["name", "ttl", "path"]).name, `${path}[${i}].cookie.name`);
    if (p.connection_properties !== undefined) out.sourceIp = r.bool(r.obj(p.connection_properties, `${path}[${i}].connection_properties`, ["source_ip"]).source_ip, `${path}[${i}].connection_properties.source_ip`);
  });
  return out;
}

function route(r: Reader, x: unknown, path: string, hosts: string[] | undefined, hashes: Map<string, HashPolicy>): Rule {
  const rt = r.obj(x, path, ["match", "route"]);
  const mp = `${path}.match`;
  const m = r.obj(rt.match, mp, ["prefix", "path", "safe_regex", "path_separated_prefix", "case_sensitive", "headers"]);
  const ap = `${path}.route`;
  if (rt.route === undefined) r.fail(ap, undefined, "a route action (redirect and direct_response are not supported)");
  const a = r.obj(rt.route, ap, ["cluster", "weighted_clusters", "prefix_rewrite", "regex_rewrite", "hash_policy"]);

  let service: Rule["service"];
  const clusters: string[] = [];
  if (a.cluster !== undefined) {
    service = r.str(a.cluster, `${ap}.cluster`);
    clusters.push(service);
  } else if (a.weighted_clusters !== undefined) {
    const wp = `${ap}.weighted_clusters`;
    const w = r.obj(a.weighted_clusters, wp, ["clusters", "total_weight"]);
    service = r.list(w.clusters, `${wp}.clusters`).map((c, i) => {
      const cp = `${wp}.clusters[${i}]`;
      const cl = r.obj(c, cp, ["name", "weight"]);
      const weight = isObj(cl.weight) ? cl.weight.value : cl.weight;
      if (typeof weight !== "number" || !Number.isInteger(weight) || weight < 0) r.fail(`${cp}.weight`, cl.weight, "a weight (integer >= 0)");
      const name = r.str(cl.name, `${cp}.name`);
      clusters.push(name);
      return { name, weight };
    });
    if (!service.length) r.fail(`${wp}.clusters`, [], "at least one cluster");
  } else {
    return r.fail(ap, a, "cluster or weighted_clusters (cluster_header is not supported)");
  }
  if (a.hash_policy !== undefined) {
    const h = hashPolicy(r, a.hash_policy, `${ap}.hash_policy`);
    for (const c of clusters) if (!hashes.has(c)) hashes.set(c, h);
  }

  const rule: Rule = { service };
  if (rt.name !== undefined) rule.name = String(rt.name);
  if (hosts) rule.host = hosts;
  const kinds = ["prefix", "path", "safe_regex", "path_separated_prefix"].filter((k) => m[k] !== undefined);
  if (kinds.length !== 1) r.fail(mp, m, "exactly one of prefix, path, safe_regex, path_separated_prefix");
  if (m.prefix !== undefined) {
    const p = String(m.prefix);
    if (p !== "" && p !== "/") rule.path = { prefix: p };
    else if (a.prefix_rewrite !== undefined) rule.path = { prefix: "/" };
  } else if (m.path !== undefined) rule.path = { exact: r.str(m.path, `${mp}.path`) };
  else if (m.safe_regex !== undefined) rule.path = { regex: r.regex(m.safe_regex, `${mp}.safe_regex`) };
  else {
    const p = r.str(m.path_separated_prefix, `${mp}.path_separated_prefix`);
    rule.path = { regex: `${escapeRe(p)}(?:/.*)?` };
  }
  if (m.case_sensitive !== undefined) rule.caseSensitive = r.bool(m.case_sensitive, `${mp}.case_sensitive`);
  if (m.headers !== undefined) rule.headers = r.list(m.headers, `${mp}.headers`).map((h, i) => headerMatch(r, h, `${mp}.headers[${i}]`));

  if (a.prefix_rewrite !== undefined && a.regex_rewrite !== undefined) r.fail(ap, a, "prefix_rewrite or regex_rewrite, not both");
  if (a.prefix_rewrite !== undefined) {
    const to = String(a.prefix_rewrite);
    if (rule.path && "prefix" in rule.path) rule.rewrite = { prefix: to };
    else if (rule.path && "exact" in rule.path) rule.redirectPath = to.startsWith("/") ? to : `/${to}`;
    else r.fail(`${ap}.prefix_rewrite`, to, "a prefix_rewrite on a prefix or path match");
  }
  if (a.regex_rewrite !== undefined) {
    const rp = `${ap}.regex_rewrite`;
    const rw = r.obj(a.regex_rewrite, rp, ["pattern", "substitution"]);
    rule.rewrite = { regex: r.regex(rw.pattern, `${rp}.pattern`), substitution: typeof rw.substitution === "string" ? rw.substitution : r.str(rw.substitution, `${rp}.substitution`) };
  }
  return rule;
}

/** Rank of a domain in Envoy's virtual host choice: exact, *.suffix, prefix.*, then "*". */
function domainRank(d: string): number {
  if (d === "*") return 3;
  if (d.startsWith("*")) return 1;
  if (d.endsWith("*")) return 2;
  return 0;
}

function routeTable(r: Reader, hcm: Obj, path: string, hashes: Map<string, HashPolicy>): Rule[] {
  if (hcm.rds !== undefined) r.fail(`${path}.rds`, hcm.rds, "an inline route_config (RDS is not supported)");
  const rcp = `${path}.route_config`;
  const rc = r.obj(hcm.route_config, rcp, ["virtual_hosts"]);
  const groups: { rank: number; len: number; order: number; domains: string[]; vh: Obj; at: string }[] = [];
  r.list(rc.virtual_hosts, `${rcp}.virtual_hosts`).forEach((x, i) => {
    const at = `${rcp}.virtual_hosts[${i}]`;
    const vh = r.obj(x, at, ["domains", "routes"]);
    const domains = r.list(vh.domains, `${at}.domains`).map((d, j) => r.str(d, `${at}.domains[${j}]`).toLowerCase());
    const byRank = new Map<number, string[]>();
    for (const d of domains) byRank.set(domainRank(d), [...(byRank.get(domainRank(d)) ?? []), d]);
    for (const [rank, ds] of byRank) groups.push({ rank, len: Math.max(...ds.map((d) => d.length)), order: i, domains: ds, vh, at });
  });
  groups.sort((a, b) => a.rank - b.rank || b.len - a.len || a.order - b.order);
  const rules: Rule[] = [];
  for (const g of groups) {
    const hosts = g.rank === 3 ? undefined : g.domains;
    r.list(g.vh.routes, `${g.at}.routes`).forEach((x, j) => rules.push(route(r, x, `${g.at}.routes[${j}]`, hosts, hashes)));
  }
  return rules;
}

function listener(r: Reader, x: unknown, path: string, hashes: Map<string, HashPolicy>): { address: string; rules: Rule[] } {
  const l = r.obj(x, path, ["address", "filter_chains"]);
  const address = r.socket(l.address, `${path}.address`);
  const chains = r.list(l.filter_chains, `${path}.filter_chains`);
  if (chains.length !== 1) r.fail(`${path}.filter_chains`, chains.length, "exactly one filter chain");
  const fp = `${path}.filter_chains[0]`;
  const fc = r.obj(chains[0], fp, ["filters"]);
  const filters = r.list(fc.filters, `${fp}.filters`);
  if (filters.length !== 1) r.fail(`${fp}.filters`, filters.length, "one filter: envoy.filters.network.http_connection_manager");
  const f = r.obj(filters[0], `${fp}.filters[0]`, ["typed_config"]);
  const tp = `${fp}.filters[0].typed_config`;
  const hcm = r.obj(f.typed_config, tp, ["@type", "route_config", "rds", "http_filters"]);
  const type = String(hcm["@type"] ?? "");
  if (!type.endsWith("http_connection_manager.v3.HttpConnectionManager")) {
    r.fail(`${tp}.@type`, type, "the http_connection_manager (other network filters are not supported)");
  }
  r.list(hcm.http_filters ?? [], `${tp}.http_filters`).forEach((h, i) => {
    const hp = `${tp}.http_filters[${i}]`;
    const hf = r.obj(h, hp, ["typed_config"]);
    const t = isObj(hf.typed_config) ? String(hf.typed_config["@type"] ?? "") : "";
    if (hf.name !== "envoy.filters.http.router" && !t.endsWith("router.v3.Router")) {
      r.fail(`${hp}.name`, hf.name, "envoy.filters.http.router (other HTTP filters are not imported: use mesher's handlers)");
    }
  });
  return { address, rules: routeTable(r, hcm, tp, hashes) };
}

const LB: Record<string, string | undefined> = { ROUND_ROBIN: undefined, RANDOM: "random", LEAST_REQUEST: "leastRequest" };

function cluster(r: Reader, x: unknown, path: string, hashes: Map<string, HashPolicy>): [string, Obj] {
  const c = r.obj(x, path, ["name", "type", "lb_policy", "connect_timeout", "load_assignment"]);
  const name = r.str(c.name, `${path}.name`);
  if (!SERVICE_NAME_RE.test(name)) r.fail(`${path}.name`, name, "a cluster name usable as a service name (letters, digits, '.', '_', '-')");
  if (c.type !== undefined && !["STATIC", "STRICT_DNS", "LOGICAL_DNS"].includes(String(c.type))) {
    r.fail(`${path}.type`, c.type, "STATIC, STRICT_DNS or LOGICAL_DNS (EDS and ORIGINAL_DST are not supported)");
  }
  if (c.connect_timeout !== undefined) r.duration(c.connect_timeout, `${path}.connect_timeout`);
  const svc: Obj = {};
  const lb = String(c.lb_policy ?? "ROUND_ROBIN");
  if (lb === "RING_HASH" || lb === "MAGLEV") {
    const h = hashes.get(name);
    if (!h || !(h.header || h.cookie || h.sourceIp)) r.fail(`${path}.lb_policy`, lb, "a hash_policy (header, cookie or source_ip) on a route to this cluster");
    svc.loadBalancer = { kind: "consistentHash", ...h };
  } else if (lb in LB) {
    if (LB[lb]) svc.loadBalancer = LB[lb];
  } else {
    r.fail(`${path}.lb_policy`, lb, "ROUND_ROBIN, RANDOM, LEAST_REQUEST, RING_HASH or MAGLEV");
  }
  const lp = `${path}.load_assignment`;
  const la = r.obj(c.load_assignment, lp, ["endpoints"]);
  const endpoints: unknown[] = [];
  r.list(la.endpoints, `${lp}.endpoints`).forEach((group, i) => {
    const gp = `${lp}.endpoints[${i}]`;
    const g = r.obj(group, gp, ["lb_endpoints", "priority", "locality", "load_balancing_weight"]);
    if (g.priority !== undefined && g.priority !== 0) r.fail(`${gp}.priority`, g.priority, "priority 0 (priorities are not supported)");
    r.list(g.lb_endpoints, `${gp}.lb_endpoints`).forEach((e, j) => {
      const ep = `${gp}.lb_endpoints[${j}]`;
      const le = r.obj(e, ep, ["endpoint", "load_balancing_weight"]);
      const endpoint = r.obj(le.endpoint, `${ep}.endpoint`, ["address"]);
      const address = r.socket(endpoint.address, `${ep}.endpoint.address`);
      const w = isObj(le.load_balancing_weight) ? le.load_balancing_weight.value : le.load_balancing_weight;
      if (w === undefined) endpoints.push(address);
      else if (typeof w !== "number" || !Number.isInteger(w) || w < 1) r.fail(`${ep}.load_balancing_weight`, w, "an integer >= 1");
      else endpoints.push({ address, weight: w });
    });
  });
  svc.endpoints = endpoints;
  return [name, svc];
}

/** Translates an Envoy v3 bootstrap into a partial mesher config (edge mode). */
export function importEnvoy(doc: unknown, file: string): Partial<UserConfig> {
  const r = new Reader(file);
  const boot = r.obj(doc, "", ["static_resources", "admin", "node", "layered_runtime"]);
  const sr = r.obj(boot.static_resources, "static_resources", ["listeners", "clusters"]);
  const hashes = new Map<string, HashPolicy>();
  const listeners = r.list(sr.listeners, "static_resources.listeners");
  if (listeners.length === 0) r.fail("static_resources.listeners", [], "one listener");
  if (listeners.length > 1) {
    r.fail("static_resources.listeners[1]", "(a second listener)", "one listener: mesher's edge mode opens one address (TLS listeners are not imported)");
  }
  const { address, rules } = listener(r, listeners[0], "static_resources.listeners[0]", hashes);
  const services: Record<string, Obj> = {};
  r.list(sr.clusters ?? [], "static_resources.clusters").forEach((c, i) => {
    const [name, svc] = cluster(r, c, `static_resources.clusters[${i}]`, hashes);
    if (services[name]) r.fail(`static_resources.clusters[${i}].name`, name, "a cluster name not used before");
    services[name] = svc;
  });
  rules.forEach((rule, i) => {
    const names = typeof rule.service === "string" ? [rule.service] : rule.service.map((w) => w.name);
    for (const n of names) if (!services[n]) r.fail(`route ${rule.name ?? i}: cluster`, n, "a cluster defined in static_resources.clusters");
  });
  const listen: Obj = { edge: address };
  if (boot.admin !== undefined) {
    const admin = r.obj(boot.admin, "admin", ["address", "profile_path"]);
    if (admin.address !== undefined) listen.admin = r.socket(admin.address, "admin.address");
  }
  return { mode: "edge", listen, ingress: rules, services } as Partial<UserConfig>;
}

/** In the shape of the importer registry (src/config/compat/index.ts). */
export const envoyBootstrap = {
  name: "Envoy v3 static bootstrap",
  detect: (doc: unknown) => isObj(doc) && isObj(doc.static_resources),
  translate: importEnvoy,
};
