/**
 * Which requests the fast path (fastpath.ts) takes, and the head each sends upstream: the
 * request head parser and the two directors (consumer: a mesh service whose chain is a
 * pass-through, round-robin over its endpoints; provider: the local app). A director returns
 * undefined for anything the regular engine must judge.
 *
 * The request head parser is hand-rolled for the same reasons as the response parser
 * (upstream/h1/parser.ts: byte-exact latin1 values, no per-header callbacks); it only decides
 * and rewrites, anything unusual goes to the regular engine.
 */
import type { ResolvedConfig } from "../config/schema.ts";
import type { Pipeline } from "../pipeline/build.ts";
import { IDENTITY_HEADER } from "../pipeline/build.ts";
import { DEFAULT_CHAINS } from "../handlers/index.ts";
import { serviceSetting } from "../handlers/settings.ts";
import { isAvailable, makeEndpoint, type Cluster, type Endpoint } from "../upstream/cluster.ts";
import type { ClusterManager } from "../upstream/clusters.ts";
import { HOP_BY_HOP, parseHost } from "../upstream/http.ts";
import { VIA_HEADER, viaContains } from "./handle.ts";
import { identityCache, localPort } from "./provider.ts";
import type { Runtime } from "./runtime.ts";
import { startTrace, TRACE_PASS, TRACE_SAMPLE, TRACE_WRITTEN, traceVerdict, untracedLines, type FastTrace } from "./fasttrace.ts";

/** Longest request head taken on the fast path (longer ones go to the regular engine). */
export const MAX_HEAD = 16 * 1024;
const FAST_METHODS = new Set(["GET", "HEAD", "OPTIONS", "DELETE", "POST", "PUT", "PATCH"]);
const HOP = new Set(HOP_BY_HOP);
/** Request headers the fast path writes itself. */
const REWRITTEN = new Set(["host", "x-forwarded-for", IDENTITY_HEADER, "x-forwarded-port", VIA_HEADER]);
const CRLF = "\r\n";

// ---------------------------------------------------------------- which services are fast

/** Per pipeline: service name as written -> canonical name when fast, null when not. */
const plans = new WeakMap<Pipeline, { ok: boolean; services: Map<string, string | null> }>();

function planOf(pipeline: Pipeline) {
  let p = plans.get(pipeline);
  if (!p) plans.set(pipeline, (p = { ok: chainIsQuiet(pipeline.config, "consumer"), services: new Map() }));
  return p;
}

/**
 * The side's chain is the default one and nothing records per request beyond metrics and the
 * trace (fasttrace.ts, startTrace).
 */
function chainIsQuiet(c: ResolvedConfig, side: "consumer" | "provider"): boolean {
  const overridden = [...DEFAULT_CHAINS[side]].some((h) => c.handlers[h] !== undefined);
  return !c.chains[side] && !overridden && !c.accessLog?.enabled && (side === "consumer" || !c.rateLimit?.provider);
}

/**
 * `listen.fastPath: "auto"`: whether the fast path in front of a listener would carry
 * anything. A request it cannot take costs an extra loopback hop to the regular engine (~10 µs,
 * ~25% of such a request: bench/NOTES.md), so "auto" leaves it out when the config sends
 * little its way: the access log on, a custom chain, or (consumer) a default policy every
 * service inherits (rate limit, timeout, retry, circuit breaker, outlier detection, a
 * balancer other than round robin).
 */
export function fastPathUseful(c: ResolvedConfig, side: "consumer" | "provider"): boolean {
  if (!chainIsQuiet(c, side)) return false;
  if (side === "provider") return true;
  const lb = c.loadBalancer;
  return !c.rateLimit?.consumer && !c.timeout && !c.retry && !c.circuitBreaker && !c.outlierDetection && (!lb || lb.kind === "roundRobin");
}

/** The canonical name of `name` when its calls can take the fast path, else null. */
function fastService(pipeline: Pipeline, clusters: ClusterManager, name: string): string | null {
  const plan = planOf(pipeline);
  if (!plan.ok) return null;
  let s = plan.services.get(name);
  if (s !== undefined) return s;
  // Not known (yet): the regular path asks discovery; once the cluster exists, it is decided here.
  const canonical = clusters.canonicalName(name);
  if (!canonical) return null;
  const c = pipeline.config;
  const svc = c.services[canonical];
  const quiet = (["rateLimit", "fault", "circuitBreaker", "timeout", "retry", "outlierDetection"] as const).every(
    (k) => serviceSetting(c, k)(canonical) === undefined,
  );
  const lb = serviceSetting(c, "loadBalancer")(canonical);
  s = quiet && !svc?.routes.length && !svc?.tls && (!lb || lb.kind === "roundRobin") ? canonical : null;
  if (plan.services.size >= 4096) plan.services.clear(); // names as clients spell them: bounded
  plan.services.set(name, s);
  return s;
}

// ---------------------------------------------------------------- the request head

export interface RequestHead {
  method: string;
  path: string;
  host: string;
  /** Lower-case names and values, [name, value, ...], in arrival order. */
  headers: string[];
  /** Content-Length of the body (0: none). */
  bodyLength: number;
}

/** True when the bytes so far can start a request line ("GET ", "PATCH ", ...). */
export function startsWithMethod(buf: Uint8Array): boolean {
  for (let i = 0; i < buf.length && i < 8; i++) {
    const b = buf[i]!;
    if (b === 32) return i > 0;
    if (b < 65 || b > 90) return false;
  }
  return buf.length < 8;
}

/** The head if the request can take the fast path as far as its own bytes go, else undefined. */
export function parseHead(buf: Buffer, start: number, end: number): RequestHead | undefined {
  const text = buf.toString("latin1", start, end);
  const eol = text.indexOf(CRLF);
  const sp1 = text.indexOf(" ");
  const sp2 = text.lastIndexOf(" ", eol);
  if (sp1 <= 0 || sp2 <= sp1 || eol - sp2 !== 9 || !text.startsWith("HTTP/1.1", sp2 + 1)) return undefined;
  const method = text.slice(0, sp1);
  if (!FAST_METHODS.has(method)) return undefined;
  let target = text.slice(sp1 + 1, sp2);
  let authority: string | undefined;
  if (target.startsWith("http://")) {
    const slash = target.indexOf("/", 7);
    authority = target.slice(7, slash < 0 ? undefined : slash);
    target = slash < 0 ? "/" : target.slice(slash);
  } else if (target[0] !== "/") return undefined;
  for (let i = 0; i < target.length; i++) {
    const ch = target.charCodeAt(i);
    if (ch <= 32 || ch >= 127) return undefined; // let the regular engine judge odd targets
  }
  const headers: string[] = [];
  let host: string | undefined;
  let bodyLength = -1;
  let pos = eol + 2;
  const stop = text.length - 2;
  while (pos < stop) {
    const nl = text.indexOf(CRLF, pos);
    const colon = text.indexOf(":", pos);
    if (colon <= pos || colon > nl) return undefined;
    const name = text.slice(pos, colon).toLowerCase();
    const value = text.slice(colon + 1, nl).trim();
    pos = nl + 2;
    switch (name) {
      case "host":
        if (host !== undefined) return undefined;
        host = value;
        continue;
      case "content-length":
        if (bodyLength >= 0 || !/^\d{1,15}$/.test(value)) return undefined; // repeated or odd: the regular engine judges
        bodyLength = Number(value);
        break;
      case "transfer-encoding":
      case "upgrade":
      case "expect":
        return undefined;
      case "connection":
        if (value.toLowerCase() !== "keep-alive") return undefined;
        continue;
    }
    if (name.length === 0 || name.includes(" ") || name.includes("\t")) return undefined;
    headers.push(name, value);
  }
  if (!host || (authority !== undefined && authority.toLowerCase() !== host.toLowerCase())) return undefined;
  return { method, path: target, host, headers, bodyLength: Math.max(0, bodyLength) };
}

// ---------------------------------------------------------------- the two sides

/** The comma-joined values of `name` in a header list ("" when absent). */
function valuesOf(list: string[], name: string): string {
  let out = "";
  for (let i = 0; i < list.length; i += 2) if (list[i] === name) out = out ? `${out}, ${list[i + 1]}` : list[i + 1]!;
  return out;
}

const DEFAULT_ROUTE = Object.freeze({ name: "default" });

/** X-Forwarded-For appended, -Proto and -Host set when absent: setForwarded (upstream/http.ts) as head lines. */
function forwardedLines(xff: string, peer: string, hasProto: boolean, hasHost: boolean, host: string): string {
  let out = `x-forwarded-for: ${xff ? `${xff}, ${peer}` : peer}\r\n`;
  if (!hasProto) out += "x-forwarded-proto: http\r\n";
  if (!hasHost) out += `x-forwarded-host: ${host}\r\n`;
  return out;
}

/** The consumer side: a mesh service whose chain is a pass-through, round-robin over its endpoints. */
export function consumerDirector(rt: Runtime, clusters: ClusterManager): Director {
  const mark = `${rt.id}/consumer`;
  const rr = new Map<string, number>();
  function pick(cluster: Cluster, now: number): Endpoint | undefined {
    const list = cluster.endpoints;
    const n = list.length;
    let i = rr.get(cluster.name) ?? 0;
    for (let k = 0; k < n; k++, i++) {
      const e = list[i % n]!;
      if (isAvailable(e, now)) {
        rr.set(cluster.name, (i + 1) % n);
        return e;
      }
    }
    return undefined;
  }

  /** Per config, Host as sent -> the fast service and port it names (only hosts that are fast). */
  const hosts = new WeakMap<Pipeline, Map<string, { service: string; port: string | undefined }>>();
  /** Decides a Host: the service and port when its calls can take the fast path. */
  function destination(pipeline: Pipeline, host: string): { service: string; port: string | undefined } | undefined {
    let known = hosts.get(pipeline);
    if (!known) hosts.set(pipeline, (known = new Map()));
    const hit = known.get(host);
    if (hit) return hit;
    const parsed = parseHost(host);
    if (!parsed) return undefined;
    const [name, port] = parsed;
    if (rt.selfAddresses.has(host.toLowerCase())) return undefined;
    if (pipeline.egressTable.match(name.toLowerCase(), port ? Number(port) : undefined, "http")) return undefined;
    const service = fastService(pipeline, clusters, name);
    if (!service) return undefined; // not cached: discovery may make it known later
    const d = { service, port };
    if (known.size >= 4096) known.clear(); // hosts as clients spell them: bounded
    known.set(host, d);
    return d;
  }

  return (head, peer) => {
    const pipeline = rt.pipeline;
    if (head.bodyLength > pipeline.config.maxRequestBodySize) return undefined; // the regular engine answers 413
    const d = destination(pipeline, head.host);
    if (!d) return undefined;
    const { service, port } = d;
    const cluster = clusters.get(service);
    if (!cluster) return undefined;
    const now = Date.now();
    const endpoint = pick(cluster, now);
    if (!endpoint) return undefined; // the regular path answers 503 with the JSON error
    const tracing = pipeline.config.tracing;
    const verdict = tracing ? traceVerdict(head.headers, tracing.sampler) : TRACE_PASS;
    // Traced: the tracer rewrites the trace headers (written after the loop).
    const traced = (verdict & 3) >= TRACE_SAMPLE;

    // The head as the regular path sends it upstream (hop-by-hop out, forwarding headers in).
    let via = "";
    let xff = "";
    let proto = false;
    let fhost = false;
    let encoding = false;
    let fport: string | undefined;
    let out = `${head.method} ${head.path} HTTP/1.1\r\nhost: ${endpoint.address}\r\n`;
    const h = head.headers;
    for (let i = 0; i < h.length; i += 2) {
      const n = h[i]!;
      const v = h[i + 1]!;
      if (HOP.has(n) || (traced && TRACE_WRITTEN.has(n))) continue;
      if (REWRITTEN.has(n)) {
        if (n === VIA_HEADER) via = via ? `${via}, ${v}` : v;
        else if (n === "x-forwarded-for") xff = xff ? `${xff}, ${v}` : v;
        else if (n === "x-forwarded-port") fport = v;
        continue;
      }
      if (n === "x-forwarded-proto") proto = true;
      else if (n === "x-forwarded-host") fhost = true;
      else if (n === "accept-encoding") encoding = true;
      out += `${n}: ${v}\r\n`;
    }
    if (via && viaContains(via, mark)) return undefined; // a loop: the regular path answers 508
    out += forwardedLines(xff, peer, proto, fhost, head.host);
    if (!encoding) out += "accept-encoding: identity\r\n";
    out += `${VIA_HEADER}: ${via ? `${via}, ${mark}` : mark}\r\n${IDENTITY_HEADER}: ${pipeline.identity}\r\n`;
    // The port named in the URL travels to the provider (as the regular path sets it).
    if (port ?? fport) out += `x-forwarded-port: ${port ?? fport}\r\n`;
    let trace: FastTrace | null = null;
    if (traced) {
      const t = startTrace(rt, h, (verdict & 3) === TRACE_SAMPLE, {
        direction: "consumer",
        method: head.method,
        path: head.path,
        service,
        port,
        clientAddress: peer,
        route: DEFAULT_ROUTE,
        cluster,
        endpoint,
        attempts: 0,
      });
      trace = t.trace;
      out += t.lines;
    } else if (tracing) out += untracedLines(verdict);
    out += CRLF;
    return {
      direction: "consumer",
      service,
      version: endpoint.tags.version ?? "",
      route: "default",
      endpoint,
      request: out,
      trace,
    };
  };
}

/** The provider side: the local app, when the provider chain is a pass-through (no rate limit). */
export function providerDirector(rt: Runtime): Director {
  const mark = `${rt.id}/provider`;
  const locals = new Map<number, Endpoint>();
  const plans = new WeakMap<Pipeline, boolean>();
  const identity = identityCache();
  return (head, peer) => {
    const pipeline = rt.pipeline;
    let ok = plans.get(pipeline);
    if (ok === undefined) {
      plans.set(pipeline, (ok = chainIsQuiet(pipeline.config, "provider")));
    }
    if (!ok || head.bodyLength > pipeline.config.maxRequestBodySize) return undefined;
    const tracing = pipeline.config.tracing;
    const verdict = tracing ? traceVerdict(head.headers, tracing.sampler) : TRACE_PASS;
    const traced = (verdict & 3) >= TRACE_SAMPLE;
    let via = "";
    let xff = "";
    let fport: string | null = null;
    let fhost: string | null = null;
    let proto = false;
    let rest = "";
    const h = head.headers;
    for (let i = 0; i < h.length; i += 2) {
      const n = h[i]!;
      const v = h[i + 1]!;
      if (HOP.has(n) || n === "host" || (traced && TRACE_WRITTEN.has(n))) continue;
      if (n === VIA_HEADER) via = via ? `${via}, ${v}` : v; // not passed on: the app's calls are new requests
      else if (n === "x-forwarded-for") xff = xff ? `${xff}, ${v}` : v;
      else {
        if (n === "x-forwarded-port") fport = v;
        else if (n === "x-forwarded-host") fhost = v;
        else if (n === "x-forwarded-proto") proto = true;
        rest += `${n}: ${v}\r\n`;
      }
    }
    if (via && viaContains(via, mark)) return undefined; // a loop: the regular path answers 508
    const config = pipeline.config;
    const port = localPort(config, fport, fhost);
    if (port === undefined) return undefined; // the regular path explains
    let endpoint = locals.get(port);
    if (!endpoint) locals.set(port, (endpoint = makeEndpoint(`127.0.0.1:${port}`, { origin: "local" })));
    let trace: FastTrace | null = null;
    let lines = "";
    if (traced) {
      const t = startTrace(rt, h, (verdict & 3) === TRACE_SAMPLE, {
        direction: "provider",
        method: head.method,
        path: head.path,
        service: config.service.name,
        port: undefined,
        clientAddress: peer,
        source: identity(valuesOf(h, IDENTITY_HEADER)),
        route: undefined,
        cluster: undefined,
        endpoint,
        attempts: 0,
      });
      trace = t.trace;
      lines = t.lines;
    } else if (tracing) lines = untracedLines(verdict);
    const out = `${head.method} ${head.path} HTTP/1.1\r\nhost: ${endpoint.address}\r\n${rest}${forwardedLines(xff, peer, proto, fhost !== null, head.host)}${lines}\r\n`;
    return {
      direction: "provider",
      service: config.service.name,
      version: config.service.version,
      route: "",
      endpoint,
      trace,
      request: out,
    };
  };
}

/** Where a fast request goes and what is sent there; from a Director. */
export interface Target {
  direction: "consumer" | "provider";
  /** The service label of the metrics (the destination, or this sidecar's own on the provider side). */
  service: string;
  /** The version label (the endpoint's tag, or this sidecar's version on the provider side). */
  version: string;
  route: string;
  endpoint: Endpoint;
  /** The rewritten request head, one char per byte (latin1). */
  request: string;
  /** The request's span, when it is traced. */
  trace: FastTrace | null;
}

/** Decides a request's fast path: its target, or undefined for the regular engine. */
export type Director = (head: RequestHead, peer: string) => Target | undefined;
