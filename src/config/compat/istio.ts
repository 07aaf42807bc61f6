/**
 * Istio VirtualService and DestinationRule (networking.istio.io v1alpha3, v1beta1, v1: one
 * schema) into mesher route rules. The sidecar subset of PEERS.md §3: http[] in order (the
 * first match wins), match uri/method/headers/withoutHeaders/queryParams/ignoreUriCase/
 * sourceLabels, weighted destinations by subset, rewrite, headers, timeout, retries, fault,
 * mirror; DestinationRule subsets, loadBalancer and outlierDetection. Every other field is an
 * error naming it, so nothing is dropped without the user knowing.
 */
import { RETRY_ON } from "../../handlers/retry/schema.ts";
import type { ConfigFragment, FragmentService, Importer } from "./index.ts";
import { fail, isObj, Reader, type Obj } from "./util.ts";

const GROUP_RE = /^networking\.istio\.io\/(v1alpha3|v1beta1|v1)$/;

function isKind(doc: unknown, kind: string): boolean {
  return isObj(doc) && doc.kind === kind && typeof doc.apiVersion === "string" && GROUP_RE.test(doc.apiVersion);
}

/** "reviews.default.svc.cluster.local" and "reviews.default.svc" name the service "reviews". */
export function serviceOfHost(r: Reader, host: unknown, path: string): string {
  const h = r.str(host, path);
  if (h.includes("*")) fail(r.file, path, h, "a service host (wildcards are not supported)");
  const m = /^([^.]+)\.[^.]+\.svc(?:\.cluster\.local)?$/.exec(h);
  return m ? m[1]! : h;
}

/** StringMatch: exactly one of exact, prefix, regex (anchored, as in Istio). */
function stringMatch(r: Reader, x: unknown, path: string, allowEmpty: boolean): Obj {
  const o = r.obj(x, path, ["exact", "prefix", "regex"]);
  const keys = Object.keys(o);
  if (keys.length === 0 && allowEmpty) return {}; // presence only
  if (keys.length !== 1) fail(r.file, path, x, "exactly one of exact, prefix, regex");
  const k = keys[0]!;
  return { [k]: r.str(o[k], `${path}.${k}`) };
}

function headerMatches(r: Reader, x: unknown, path: string): Record<string, Obj> {
  const out: Record<string, Obj> = {};
  for (const [name, m] of Object.entries(r.obj(x, path))) {
    if (["uri", "scheme", "method", "authority"].includes(name)) {
      fail(r.file, `${path}.${name}`, m, "a header name (Istio ignores uri/scheme/method/authority here; use the match fields)");
    }
    out[name] = stringMatch(r, m, `${path}.${name}`, true);
  }
  return out;
}

const MATCH_KNOWN = ["name", "uri", "method", "headers", "withoutHeaders", "queryParams", "ignoreUriCase", "sourceLabels"];
const MATCH_UNSUPPORTED = {
  scheme: "scheme matching is not supported",
  authority: "authority matching is not supported (the host names the service)",
  port: "port matching is not supported",
  gateways: "gateway-bound matches are not supported by a sidecar",
  sourceNamespace: "namespaces are not modelled",
  statPrefix: "not supported",
};

function translateMatch(r: Reader, x: unknown, path: string): Obj {
  const m = r.obj(x, path, MATCH_KNOWN, MATCH_UNSUPPORTED);
  const out: Obj = {};
  if (m.uri !== undefined) {
    out.path = stringMatch(r, m.uri, `${path}.uri`, false);
    if (m.ignoreUriCase === true) (out.path as Obj).caseInsensitive = true;
  }
  if (m.method !== undefined) {
    const sm = stringMatch(r, m.method, `${path}.method`, false);
    if (sm.exact === undefined) fail(r.file, `${path}.method`, m.method, "an exact method");
    out.method = sm.exact;
  }
  if (m.headers !== undefined) out.headers = headerMatches(r, m.headers, `${path}.headers`);
  if (m.withoutHeaders !== undefined) out.withoutHeaders = headerMatches(r, m.withoutHeaders, `${path}.withoutHeaders`);
  if (m.queryParams !== undefined) {
    const q: Record<string, Obj> = {};
    for (const [name, sm] of Object.entries(r.obj(m.queryParams, `${path}.queryParams`))) {
      q[name] = stringMatch(r, sm, `${path}.queryParams.${name}`, true);
    }
    out.query = q;
  }
  if (m.sourceLabels !== undefined) out.sourceTags = r.tags(m.sourceLabels, `${path}.sourceLabels`);
  return out;
}

/** A destination {host, subset, port} as a mesher route entry / mirror (subset resolved later). */
function destination(r: Reader, x: unknown, path: string, owner: string, explicit = false): Obj {
  // port: mesher keeps the port the caller named (X-Forwarded-Port); it is not a route choice.
  const d = r.obj(x, path, ["host", "subset", "port"]);
  const out: Obj = {};
  const service = serviceOfHost(r, d.host, `${path}.host`);
  if (service !== owner || explicit) out.service = service;
  if (d.subset !== undefined) {
    out.subset = r.str(d.subset, `${path}.subset`);
    out.subsetFrom = `${r.file}: ${path}.subset`;
  }
  return out;
}

function translateRoutes(r: Reader, x: unknown, path: string, owner: string): Obj[] {
  const list = r.list(x, path);
  const entries = list.map((item, j) => {
    const p = `${path}[${j}]`;
    const o = r.obj(item, p, ["destination", "weight"], { headers: "per-destination header actions are not supported; use the route's headers" });
    const entry = destination(r, o.destination, `${p}.destination`, owner);
    if (o.weight !== undefined) entry.weight = r.num(o.weight, `${p}.weight`);
    return entry;
  });
  if (entries.length <= 1) {
    if (entries[0]) delete entries[0].weight; // a single destination takes all traffic
    return entries;
  }
  if (entries.every((e) => e.weight === undefined)) return entries; // equal shares
  // Istio shares traffic as weight / sum(weights); an absent weight is 0. Mesher weights are percents.
  const weights = entries.map((e) => (e.weight as number | undefined) ?? 0);
  const sum = weights.reduce((a, b) => a + b, 0);
  const scaled = weights.map((w) => (w * 100) / sum);
  if (sum === 0 || !scaled.every(Number.isInteger)) fail(r.file, path, weights, "weights that sum to 100 (or scale to whole percents)");
  entries.forEach((e, j) => (e.weight = scaled[j]));
  return entries;
}

function percentOf(r: Reader, o: Obj, path: string): number | undefined {
  if (o.percentage !== undefined) {
    const p = r.obj(o.percentage, `${path}.percentage`, ["value"]);
    return r.num(p.value, `${path}.percentage.value`);
  }
  if (o.percent !== undefined) return r.num(o.percent, `${path}.percent`);
  return undefined;
}

function translateFault(r: Reader, x: unknown, path: string): Obj {
  const f = r.obj(x, path, ["delay", "abort"]);
  const out: Obj = {};
  if (f.delay !== undefined) {
    const p = `${path}.delay`;
    const d = r.obj(f.delay, p, ["fixedDelay", "percentage", "percent"], { exponentialDelay: "only fixedDelay is supported" });
    const delay: Obj = { fixedDelay: r.duration(d.fixedDelay, `${p}.fixedDelay`) };
    // Istio: "If left unspecified, no request will be delayed" (mesher's own default is 100).
    delay.percent = percentOf(r, d, p) ?? 0;
    out.delay = delay;
  }
  if (f.abort !== undefined) {
    const p = `${path}.abort`;
    const a = r.obj(f.abort, p, ["httpStatus", "percentage", "percent"], {
      grpcStatus: "only httpStatus aborts are supported",
      http2Error: "only httpStatus aborts are supported",
    });
    const abort: Obj = { httpStatus: r.num(a.httpStatus, `${p}.httpStatus`) };
    abort.percent = percentOf(r, a, p) ?? 0; // Istio: unspecified, no request is aborted
    out.abort = abort;
  }
  return out;
}

function translateRetries(r: Reader, x: unknown, path: string): Obj {
  const o = r.obj(x, path, ["attempts", "perTryTimeout", "retryOn", "backoff", "retryIgnorePreviousHosts", "retryRemoteLocalities"]);
  const out: Obj = { attempts: r.num(o.attempts ?? 0, `${path}.attempts`) };
  if (o.perTryTimeout !== undefined) out.perTryTimeout = r.duration(o.perTryTimeout, `${path}.perTryTimeout`);
  if (o.backoff !== undefined) out.backoff = { base: r.duration(o.backoff, `${path}.backoff`) };
  if (o.retryIgnorePreviousHosts === false) fail(r.file, `${path}.retryIgnorePreviousHosts`, false, "true (retries always move to another endpoint first)");
  if (o.retryRemoteLocalities === true) fail(r.file, `${path}.retryRemoteLocalities`, true, "false (localities are not modelled)");
  if (o.retryOn !== undefined) {
    const on = new Set<string>();
    const codes: number[] = [];
    for (const token of r.str(o.retryOn, `${path}.retryOn`).split(",").map((t) => t.trim()).filter(Boolean)) {
      if (/^\d{3}$/.test(token)) {
        codes.push(Number(token));
        on.add("retriable-status-codes");
      } else if (token === "refused-stream") {
        on.add("reset"); // an HTTP/2 stream refused is a reset before the response
      } else if ((RETRY_ON as readonly string[]).includes(token)) {
        on.add(token);
      } else {
        fail(r.file, `${path}.retryOn`, token, `retry conditions among ${RETRY_ON.join(", ")}, refused-stream or status codes`);
      }
    }
    out.on = [...on];
    if (codes.length) out.statusCodes = codes;
  }
  return out;
}

function translateHeaderOps(r: Reader, x: unknown, path: string): Obj {
  const h = r.obj(x, path, ["request", "response"]);
  const out: Obj = {};
  for (const side of ["request", "response"] as const) {
    if (h[side] === undefined) continue;
    const p = `${path}.${side}`;
    const ops = r.obj(h[side], p, ["set", "add", "remove"]);
    const o: Obj = {};
    if (ops.set !== undefined) o.set = r.tags(ops.set, `${p}.set`);
    if (ops.add !== undefined) o.add = r.tags(ops.add, `${p}.add`);
    if (ops.remove !== undefined) o.remove = r.list(ops.remove, `${p}.remove`).map((n, i) => r.str(n, `${p}.remove[${i}]`));
    out[side] = o;
  }
  return out;
}

function translateRewrite(r: Reader, x: unknown, path: string): Obj {
  const o = r.obj(x, path, ["uri", "uriRegexRewrite"], { authority: "the authority is the endpoint's; rewriting it is not supported" });
  if (o.uri !== undefined && o.uriRegexRewrite !== undefined) fail(r.file, path, x, "one of uri, uriRegexRewrite");
  if (o.uri !== undefined) return { prefix: r.str(o.uri, `${path}.uri`) };
  const p = `${path}.uriRegexRewrite`;
  const rr = r.obj(o.uriRegexRewrite, p, ["match", "rewrite"]);
  // RE2 writes groups as \1; JavaScript's replace as $1 (and a literal $ as $$).
  const substitution = r.str(rr.rewrite, `${p}.rewrite`).replace(/\$/g, "$$$$").replace(/\\(\d)/g, "$$$1");
  return { regex: { pattern: r.str(rr.match, `${p}.match`), substitution } };
}

const HTTP_KNOWN = ["name", "match", "route", "rewrite", "timeout", "retries", "fault", "mirror", "mirrorPercentage", "mirrorPercent", "mirror_percent", "mirrors", "headers"];
const HTTP_UNSUPPORTED = {
  redirect: "redirects are not supported",
  directResponse: "direct responses are not supported",
  delegate: "delegation is not supported",
  corsPolicy: "CORS policies are not supported",
};

function translateHttpRoute(r: Reader, x: unknown, path: string, owner: string, vsName: string, index: number): Obj {
  const h = r.obj(x, path, HTTP_KNOWN, HTTP_UNSUPPORTED);
  const rule: Obj = { name: h.name !== undefined ? r.str(h.name, `${path}.name`) : `${vsName}.http[${index}]` };
  if (h.match !== undefined) {
    const list = r.list(h.match, `${path}.match`).map((m, i) => translateMatch(r, m, `${path}.match[${i}]`));
    if (list.length) rule.match = list.length === 1 ? list[0] : list;
  }
  if (h.route !== undefined) rule.route = translateRoutes(r, h.route, `${path}.route`, owner);
  if (h.rewrite !== undefined) rule.rewrite = translateRewrite(r, h.rewrite, `${path}.rewrite`);
  if (h.headers !== undefined) rule.headers = translateHeaderOps(r, h.headers, `${path}.headers`);
  if (h.timeout !== undefined) rule.timeout = r.duration(h.timeout, `${path}.timeout`);
  if (h.retries !== undefined) rule.retry = translateRetries(r, h.retries, `${path}.retries`);
  if (h.fault !== undefined) rule.fault = translateFault(r, h.fault, `${path}.fault`);
  const mirrors: Obj[] = [];
  if (h.mirror !== undefined) {
    const m = destination(r, h.mirror, `${path}.mirror`, owner, true);
    const pct = h.mirrorPercentage ?? h.mirrorPercent ?? h.mirror_percent;
    if (isObj(pct)) m.percent = r.num(pct.value, `${path}.mirrorPercentage.value`);
    else if (pct !== undefined) m.percent = r.num(pct, `${path}.mirrorPercent`);
    mirrors.push(m);
  }
  if (h.mirrors !== undefined) {
    r.list(h.mirrors, `${path}.mirrors`).forEach((item, i) => {
      const p = `${path}.mirrors[${i}]`;
      const o = r.obj(item, p, ["destination", "percentage"]);
      const m = destination(r, o.destination, `${p}.destination`, owner, true);
      const percent = percentOf(r, o, p);
      if (percent !== undefined) m.percent = percent;
      mirrors.push(m);
    });
  }
  if (mirrors.length) rule.mirror = mirrors;
  return rule;
}

function spec(r: Reader, doc: Obj, known: string[], unsupported: Record<string, string>): Obj {
  r.obj(doc, "", ["apiVersion", "kind", "metadata", "spec", "status"]);
  return r.obj(doc.spec, "spec", known, unsupported);
}

function nameOf(doc: Obj): string {
  return isObj(doc.metadata) && typeof doc.metadata.name === "string" ? doc.metadata.name : "virtualservice";
}

export const istioVirtualService: Importer = {
  name: "Istio VirtualService",
  detect: (doc) => isKind(doc, "VirtualService"),
  translate(doc, file): ConfigFragment {
    const r = new Reader(file);
    const s = spec(r, doc as Obj, ["hosts", "gateways", "http", "exportTo"], {
      tcp: "only http routes are supported",
      tls: "only http routes are supported",
    });
    if (s.gateways !== undefined) {
      const gws = r.list(s.gateways, "spec.gateways");
      if (!gws.includes("mesh")) fail(file, "spec.gateways", s.gateways, 'a list including "mesh" (rules bound only to gateways do not apply to sidecars)');
    }
    const hosts = r.list(s.hosts, "spec.hosts").map((h, i) => serviceOfHost(r, h, `spec.hosts[${i}]`));
    const services: Record<string, FragmentService> = {};
    const http = s.http === undefined ? [] : r.list(s.http, "spec.http");
    for (const svc of hosts) {
      // Precedence 0 for all: the stable sort keeps http[] order, and first match wins.
      services[svc] = { routes: http.map((h, i) => translateHttpRoute(r, h, `spec.http[${i}]`, svc, nameOf(doc as Obj), i)) };
    }
    return { services };
  },
};

const LB_SIMPLE: Record<string, string | undefined> = {
  UNSPECIFIED: undefined,
  ROUND_ROBIN: "roundRobin",
  RANDOM: "random",
  LEAST_REQUEST: "leastRequest",
  LEAST_CONN: "leastRequest", // the deprecated name of LEAST_REQUEST
};

function translateLoadBalancer(r: Reader, x: unknown, path: string): unknown {
  const lb = r.obj(x, path, ["simple", "consistentHash"], {
    localityLbSetting: "localities are not modelled",
    warmupDurationSecs: "slow start is not supported",
    warmup: "slow start is not supported",
  });
  if (lb.simple !== undefined) {
    const name = r.str(lb.simple, `${path}.simple`);
    if (!(name in LB_SIMPLE)) fail(r.file, `${path}.simple`, name, `one of ${Object.keys(LB_SIMPLE).join(", ")}`);
    return LB_SIMPLE[name];
  }
  const p = `${path}.consistentHash`;
  const ch = r.obj(lb.consistentHash, p, ["httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName", "ringHash", "minimumRingSize", "maglev"]);
  const by: Obj = { kind: "consistentHash" };
  if (ch.httpHeaderName !== undefined) by.header = r.str(ch.httpHeaderName, `${p}.httpHeaderName`);
  else if (ch.httpCookie !== undefined) by.cookie = r.str(r.obj(ch.httpCookie, `${p}.httpCookie`, ["name", "path", "ttl"]).name, `${p}.httpCookie.name`);
  else if (ch.useSourceIp === true) by.sourceIp = true;
  else if (ch.httpQueryParameterName !== undefined) {
    fail(r.file, `${p}.httpQueryParameterName`, ch.httpQueryParameterName, "httpHeaderName, httpCookie or useSourceIp (hashing a query parameter is not supported)");
  } else fail(r.file, p, lb.consistentHash, "one of httpHeaderName, httpCookie, useSourceIp");
  return by;
}

function translateOutlier(r: Reader, x: unknown, path: string): Obj {
  const o = r.obj(x, path, ["consecutive5xxErrors", "consecutiveErrors", "consecutiveGatewayErrors", "interval", "baseEjectionTime", "maxEjectionPercent"], {
    consecutiveLocalOriginFailures: "local-origin failures are counted as gateway errors; use consecutiveGatewayErrors",
    splitExternalLocalOriginErrors: "not supported",
    minHealthPercent: "not supported",
  });
  const out: Obj = {};
  const c5 = o.consecutive5xxErrors ?? o.consecutiveErrors; // consecutiveErrors: the deprecated name
  if (c5 !== undefined) out.consecutive5xx = r.num(c5, `${path}.consecutive5xxErrors`);
  if (o.consecutiveGatewayErrors !== undefined) out.consecutiveGatewayErrors = r.num(o.consecutiveGatewayErrors, `${path}.consecutiveGatewayErrors`);
  // interval is Envoy's sweep period; mesher ejects on the Nth consecutive error at once, so
  // there is nothing to translate it into (reading it still validates it).
  if (o.interval !== undefined) r.duration(o.interval, `${path}.interval`);
  if (o.baseEjectionTime !== undefined) out.baseEjectionTime = r.duration(o.baseEjectionTime, `${path}.baseEjectionTime`);
  if (o.maxEjectionPercent !== undefined) out.maxEjectionPercent = r.num(o.maxEjectionPercent, `${path}.maxEjectionPercent`);
  return out;
}

const POLICY_UNSUPPORTED = {
  connectionPool: "connection pool limits are not translated; set the service's circuitBreaker.maxConcurrent",
  tls: "upstream TLS from a DestinationRule is not supported",
  portLevelSettings: "port-level policies are not supported",
  tunnel: "not supported",
  proxyProtocol: "not supported",
  retryBudget: "set the retry budget in the service's retry",
};

export const istioDestinationRule: Importer = {
  name: "Istio DestinationRule",
  detect: (doc) => isKind(doc, "DestinationRule"),
  translate(doc, file): ConfigFragment {
    const r = new Reader(file);
    const s = spec(r, doc as Obj, ["host", "subsets", "trafficPolicy", "exportTo"], { workloadSelector: "workload selectors are not supported" });
    const svc = serviceOfHost(r, s.host, "spec.host");
    const out: FragmentService = {};
    if (s.subsets !== undefined) {
      const subsets: Record<string, Record<string, string>> = {};
      r.list(s.subsets, "spec.subsets").forEach((x, i) => {
        const p = `spec.subsets[${i}]`;
        const sub = r.obj(x, p, ["name", "labels"], { trafficPolicy: "subset-level traffic policies are not supported" });
        subsets[r.str(sub.name, `${p}.name`)] = sub.labels === undefined ? {} : r.tags(sub.labels, `${p}.labels`);
      });
      out.subsets = subsets;
    }
    if (s.trafficPolicy !== undefined) {
      const tp = r.obj(s.trafficPolicy, "spec.trafficPolicy", ["loadBalancer", "outlierDetection"], POLICY_UNSUPPORTED);
      if (tp.loadBalancer !== undefined) {
        const lb = translateLoadBalancer(r, tp.loadBalancer, "spec.trafficPolicy.loadBalancer");
        if (lb !== undefined) out.loadBalancer = lb;
      }
      if (tp.outlierDetection !== undefined) out.outlierDetection = translateOutlier(r, tp.outlierDetection, "spec.trafficPolicy.outlierDetection");
    }
    return { services: { [svc]: out } };
  },
};
