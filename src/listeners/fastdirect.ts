/**
 * Which requests the fast path (fastpath.ts) takes, and how each one's head is rewritten: the
 * two directors (consumer: a mesh service whose chain is a pass-through, round-robin over its
 * endpoints; provider: the local app). A director returns undefined for anything the regular
 * engine must judge. The head itself is read and written on its bytes (fasthead.ts).
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
import { startTrace, TRACE_PASS, TRACE_SAMPLE, TRACE_WRITTEN, traceVerdict, requestSeqFor, type FastTrace } from "./fasttrace.ts";
import { pathOf, type HeadRewrite, type RequestHead } from "./fasthead.ts";

/** Request headers not passed on: hop-by-hop ones and those the side writes itself (with the trace's when traced). */
const CONSUMER_DROP = new Set([...HOP_BY_HOP, "host", "x-forwarded-for", IDENTITY_HEADER, "x-forwarded-port", VIA_HEADER]);
const CONSUMER_DROP_TRACED = new Set([...CONSUMER_DROP, ...TRACE_WRITTEN]);
/** The provider passes the identity header and X-Forwarded-Port/-Host on to the app; Via stays with the mesh. */
const PROVIDER_DROP = new Set([...HOP_BY_HOP, "host", "x-forwarded-for", VIA_HEADER]);
const PROVIDER_DROP_TRACED = new Set([...PROVIDER_DROP, ...TRACE_WRITTEN]);
const NO_BYTES: Uint8Array = new Uint8Array(0);

/**
 * Per client connection: the tail last built for it, reused while the config and `key` (what
 * it was built from besides the connection: the Host on the consumer side, the incoming
 * X-Forwarded-For on the provider side) are the same.
 */
export interface DirectMemo {
  pipeline: Pipeline | null;
  key: string;
  tail: Uint8Array;
}
export const newMemo = (): DirectMemo => ({ pipeline: null, key: "", tail: NO_BYTES });

/** The connection's tail built for this config and `key`, or null. */
function memoTail(memo: DirectMemo, pipeline: Pipeline, key: string): Uint8Array | null {
  return memo.pipeline === pipeline && memo.key === key ? memo.tail : null;
}

/** Keeps `text` as the connection's tail for this config and `key`. */
function remember(memo: DirectMemo, pipeline: Pipeline, key: string, text: string): Uint8Array {
  memo.pipeline = pipeline;
  memo.key = key;
  return (memo.tail = Buffer.from(text, "latin1"));
}

/** "host: <address>\r\n" per endpoint. */
const hostLines = new WeakMap<Endpoint, Uint8Array>();
function hostLine(e: Endpoint): Uint8Array {
  let b = hostLines.get(e);
  if (!b) hostLines.set(e, (b = Buffer.from(`host: ${e.address}\r\n`, "latin1")));
  return b;
}

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

// ---------------------------------------------------------------- the two sides

/** The comma-joined values of `name` in a header list ("" when absent). */
function valuesOf(list: string[], name: string): string {
  let out = "";
  for (let i = 0; i < list.length; i += 2) if (list[i] === name) out = out ? `${out}, ${list[i + 1]}` : list[i + 1]!;
  return out;
}

const DEFAULT_ROUTE = Object.freeze({ name: "default" });

/** What a request carries of the headers the consumer rewrites or completes. */
interface Forwarding {
  via: string;
  xff: string;
  proto: boolean;
  fhost: boolean;
  encoding: boolean;
  fport: string | undefined;
}
const NO_FORWARDING: Forwarding = Object.freeze({ via: "", xff: "", proto: false, fhost: false, encoding: false, fport: undefined });

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

  /** The lines the consumer adds after the request's own (forwarding, via, identity). */
  function addedLines(pipeline: Pipeline, peer: string, host: string, port: string | undefined, f: Forwarding): string {
    let text = forwardedLines(f.xff, peer, f.proto, f.fhost, host);
    if (!f.encoding) text += "accept-encoding: identity\r\n";
    text += `${VIA_HEADER}: ${f.via ? `${f.via}, ${mark}` : mark}\r\n${IDENTITY_HEADER}: ${pipeline.identity}\r\n`;
    // The port named in the URL travels to the provider (as the regular path sets it).
    if (port ?? f.fport) text += `x-forwarded-port: ${port ?? f.fport}\r\n`;
    return text;
  }

  return (head, peer, memo) => {
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
    // Traced: the tracer rewrites the trace headers (written after the request's lines).
    const traced = (verdict & 3) >= TRACE_SAMPLE;

    // What the regular path adds or rewrites (hop-by-hop out, forwarding headers in).
    let via = "";
    let xff = "";
    let proto = false;
    let fhost = false;
    let encoding = false;
    let fport: string | undefined;
    const h = head.headers;
    for (let i = 0; i < h.length; i += 2) {
      const n = h[i]!;
      if (n === VIA_HEADER) via = via ? `${via}, ${h[i + 1]}` : h[i + 1]!;
      else if (n === "x-forwarded-for") xff = xff ? `${xff}, ${h[i + 1]}` : h[i + 1]!;
      else if (n === "x-forwarded-port") fport = h[i + 1];
      else if (n === "x-forwarded-proto") proto = true;
      else if (n === "x-forwarded-host") fhost = true;
      else if (n === "accept-encoding") encoding = true;
    }
    if (via && viaContains(via, mark)) return undefined; // a loop: the regular path answers 508
    let tail = NO_BYTES;
    let text = "";
    if (!via && !xff && !proto && !fhost && !encoding && fport === undefined) {
      // The common case: lines that only depend on the connection and the Host (its port too).
      tail = memoTail(memo, pipeline, head.host) ?? remember(memo, pipeline, head.host, addedLines(pipeline, peer, head.host, port, NO_FORWARDING));
    } else text = addedLines(pipeline, peer, head.host, port, { via, xff, proto, fhost, encoding, fport });
    let trace: FastTrace | null = null;
    if (traced) {
      const t = startTrace(rt, h, (verdict & 3) === TRACE_SAMPLE, {
        direction: "consumer",
        method: head.method,
        path: pathOf(head),
        service,
        port,
        clientAddress: peer,
        route: DEFAULT_ROUTE,
        cluster,
        endpoint,
        attempts: 0,
      });
      trace = t.trace;
      text += t.lines;
    }
    const untraced = tracing && !traced ? verdict : 0;
    return {
      direction: "consumer",
      service,
      version: endpoint.tags.version ?? "",
      route: "default",
      endpoint,
      hostLine: hostLine(endpoint),
      drop: traced ? CONSUMER_DROP_TRACED : CONSUMER_DROP,
      tail,
      tailText: text,
      trace,
      untraced,
      requestSeq: requestSeqFor(untraced),
    };
  };
}

/** The provider side: the local app, when the provider chain is a pass-through (no rate limit). */
export function providerDirector(rt: Runtime): Director {
  const mark = `${rt.id}/provider`;
  const locals = new Map<number, Endpoint>();
  const plans = new WeakMap<Pipeline, boolean>();
  const identity = identityCache();
  return (head, peer, memo) => {
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
    const h = head.headers;
    for (let i = 0; i < h.length; i += 2) {
      const n = h[i]!;
      if (n === VIA_HEADER) via = via ? `${via}, ${h[i + 1]}` : h[i + 1]!; // not passed on: the app's calls are new requests
      else if (n === "x-forwarded-for") xff = xff ? `${xff}, ${h[i + 1]}` : h[i + 1]!;
      else if (n === "x-forwarded-port") fport = h[i + 1]!;
      else if (n === "x-forwarded-host") fhost = h[i + 1]!;
      else if (n === "x-forwarded-proto") proto = true;
    }
    if (via && viaContains(via, mark)) return undefined; // a loop: the regular path answers 508
    const config = pipeline.config;
    const port = localPort(config, fport, fhost);
    if (port === undefined) return undefined; // the regular path explains
    let endpoint = locals.get(port);
    if (!endpoint) locals.set(port, (endpoint = makeEndpoint(`127.0.0.1:${port}`, { origin: "local" })));
    let trace: FastTrace | null = null;
    let text = "";
    let tail = NO_BYTES;
    if (proto && fhost !== null) {
      // From a consumer sidecar (it sets both, and X-Forwarded-For): one line, kept for the
      // connection while the incoming X-Forwarded-For is the same.
      tail = memoTail(memo, pipeline, xff) ?? remember(memo, pipeline, xff, forwardedLines(xff, peer, true, true, ""));
    } else text = forwardedLines(xff, peer, proto, fhost !== null, head.host);
    if (traced) {
      const t = startTrace(rt, h, (verdict & 3) === TRACE_SAMPLE, {
        direction: "provider",
        method: head.method,
        path: pathOf(head),
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
      text += t.lines;
    }
    const untraced = tracing && !traced ? verdict : 0;
    return {
      direction: "provider",
      service: config.service.name,
      version: config.service.version,
      route: "",
      endpoint,
      trace,
      hostLine: hostLine(endpoint),
      drop: traced ? PROVIDER_DROP_TRACED : PROVIDER_DROP,
      tail,
      tailText: text,
      untraced,
      requestSeq: requestSeqFor(untraced),
    };
  };
}

/** Where a fast request goes and what is sent there (its head's rewrite: fasthead.ts `writeHead`); from a Director. */
export interface Target extends HeadRewrite {
  direction: "consumer" | "provider";
  /** The service label of the metrics (the destination, or this sidecar's own on the provider side). */
  service: string;
  /** The version label (the endpoint's tag, or this sidecar's version on the provider side). */
  version: string;
  route: string;
  endpoint: Endpoint;
  /** The request's span, when it is traced. */
  trace: FastTrace | null;
}

/** Decides a request's fast path: its target, or undefined for the regular engine. */
export type Director = (head: RequestHead, peer: string, memo: DirectMemo) => Target | undefined;
