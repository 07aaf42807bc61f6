/**
 * The fast path of the consumer and provider ports (`listen.fastPath`): a request whose chain
 * has nothing to do is relayed over raw sockets, head rewritten as the regular path would, body
 * bytes passed through, without building a Request, Headers or Response. Everything else (a
 * chunked upload, an upgrade, CONNECT, egress, errors, a service with routes, policies,
 * tracing or an access log...) is piped byte for byte to the regular engine (Bun.serve or
 * node:http) listening on a private loopback port, so its behaviour is the regular one.
 *
 * Why: bench/NOTES.md ("Change 5"). At a fixed 3,000 req/s a Bun.serve + upstream-client proxy
 * costs ~53 µs of CPU per request in Web objects and promises before any mesher logic; a raw
 * socket relay ~25 µs (nginx ~32 µs).
 *
 * A request is fast when: HTTP/1.1, method GET, HEAD, OPTIONS, DELETE, POST, PUT or PATCH
 * with no body or a Content-Length one (streamed through), no Transfer-Encoding, Upgrade or
 * Expect, no Connection header but "keep-alive"; on the consumer side, Host a known mesh
 * service (not egress, not this sidecar, no loop) whose compiled chain is a pass-through: the
 * default consumer chain, no handler overridden by name, no route rules, no rate limit, fault,
 * circuit breaker, timeout, retry or outlier detection for it, round-robin balancing, no
 * upstream TLS, tracing and access log off; on the provider side, the default provider chain
 * without a rate limit, tracing or access log, and a local port known for it. The request head parser is hand-rolled for the
 * same reasons as the response parser (upstream/h1/parser.ts: byte-exact latin1 values, no
 * per-header callbacks); it only decides and rewrites, anything unusual goes to the regular
 * engine. Once a connection has been piped it stays piped.
 */
import type { Socket, TCPSocketListener } from "bun";
import type { ResolvedConfig } from "../config/schema.ts";
import type { Pipeline } from "../pipeline/build.ts";
import { IDENTITY_HEADER } from "../pipeline/build.ts";
import { DEFAULT_CHAINS } from "../handlers/index.ts";
import { serviceSetting } from "../handlers/settings.ts";
import { errorResponse, MeshError } from "../pipeline/errors.ts";
import { isAvailable, makeEndpoint, splitAddress, type Cluster, type Endpoint } from "../upstream/cluster.ts";
import type { ClusterManager } from "../upstream/clusters.ts";
import { forwardable } from "../upstream/h1/headers.ts";
import { findHeadEnd, headerLines, ResponseParser, type ResponseHead } from "../upstream/h1/parser.ts";
import { HOP_BY_HOP, parseHost } from "../upstream/http.ts";
import { VIA_HEADER, viaContains } from "./handle.ts";
import { localPort } from "./provider.ts";
import type { Runtime } from "./runtime.ts";
import type { RequestSeries } from "../telemetry/metrics.ts";
import type { Bound } from "./serve.ts";

/** Longest request head taken on the fast path (longer ones go to the regular engine). */
const MAX_HEAD = 16 * 1024;
const FAST_METHODS = new Set(["GET", "HEAD", "OPTIONS", "DELETE", "POST", "PUT", "PATCH"]);
const HOP = new Set(HOP_BY_HOP);
/** Request headers the fast path writes itself. */
const REWRITTEN = new Set(["host", "x-forwarded-for", IDENTITY_HEADER, "x-forwarded-port", VIA_HEADER]);
const CRLF = "\r\n";
const LAST_CHUNK = Buffer.from("0\r\n\r\n", "latin1");
/** Idle upstream connections kept per endpoint, and for how long (seconds). */
const MAX_IDLE = 256;
const UPSTREAM_IDLE_SECONDS = 15;

// ---------------------------------------------------------------- which services are fast

/** Per pipeline: service name as written -> canonical name when fast, null when not. */
const plans = new WeakMap<Pipeline, { ok: boolean; services: Map<string, string | null> }>();

function planOf(pipeline: Pipeline) {
  let p = plans.get(pipeline);
  if (!p) plans.set(pipeline, (p = { ok: chainIsQuiet(pipeline.config, "consumer"), services: new Map() }));
  return p;
}

/** The side's chain is the default one and nothing records per request beyond metrics. */
function chainIsQuiet(c: ResolvedConfig, side: "consumer" | "provider"): boolean {
  const overridden = [...DEFAULT_CHAINS[side]].some((h) => c.handlers[h] !== undefined);
  return !c.chains[side] && !overridden && !c.tracing && !c.accessLog?.enabled && (side === "consumer" || !c.rateLimit?.provider);
}

/**
 * `listen.fastPath: "auto"`: whether the fast path in front of a listener would carry
 * anything. A request it cannot take costs an extra loopback hop to the regular engine (~10 µs,
 * ~25% of such a request: bench/NOTES.md), so "auto" leaves it out when the config sends
 * nothing its way: tracing or the access log on, a custom chain, or (consumer) a default
 * policy every service inherits (rate limit, timeout, retry, circuit breaker, outlier
 * detection, a balancer other than round robin).
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

/**
 * Writes `data`, or queues it behind what is queued; false when (some of) it had to wait: the
 * caller pauses whoever produces the bytes until the socket drains (see `flush`).
 */
function push(socket: { write(data: Uint8Array): number }, queue: Uint8Array[], data: Uint8Array): boolean {
  if (queue.length) {
    queue.push(data);
    return false;
  }
  const n = socket.write(data);
  if (n >= data.byteLength) return true;
  queue.push(data.slice(Math.max(0, n)));
  return false;
}

/** Writes queued bytes until the socket is full; true when the queue is empty. */
function flush(socket: { write(data: Uint8Array): number }, queue: Uint8Array[]): boolean {
  while (queue.length) {
    const d = queue[0]!;
    const n = socket.write(d);
    if (n < d.byteLength) {
      queue[0] = d.slice(Math.max(0, n));
      return false;
    }
    queue.shift();
  }
  return true;
}

/** True when the bytes so far can start a request line ("GET ", "PATCH ", ...). */
function startsWithMethod(buf: Uint8Array): boolean {
  for (let i = 0; i < buf.length && i < 8; i++) {
    const b = buf[i]!;
    if (b === 32) return i > 0;
    if (b < 65 || b > 90) return false;
  }
  return buf.length < 8;
}

/** The head if the request can take the fast path as far as its own bytes go, else undefined. */
function parseHead(buf: Buffer, start: number, end: number): RequestHead | undefined {
  const text = buf.toString("latin1", start, end);
  const eol = text.indexOf(CRLF);
  const sp1 = text.indexOf(" ");
  const sp2 = text.lastIndexOf(" ", eol);
  if (sp1 <= 0 || sp2 <= sp1 || text.slice(sp2 + 1, eol) !== "HTTP/1.1") return undefined;
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
      if (HOP.has(n)) continue;
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
    out += CRLF;
    return {
      direction: "consumer",
      service,
      version: endpoint.tags.version ?? "",
      route: "default",
      endpoint,
      bytes: Buffer.from(out, "latin1"),
    };
  };
}

/** The provider side: the local app, when the provider chain is a pass-through (no rate limit). */
export function providerDirector(rt: Runtime): Director {
  const mark = `${rt.id}/provider`;
  const locals = new Map<number, Endpoint>();
  const plans = new WeakMap<Pipeline, boolean>();
  return (head, peer) => {
    const pipeline = rt.pipeline;
    let ok = plans.get(pipeline);
    if (ok === undefined) {
      plans.set(pipeline, (ok = chainIsQuiet(pipeline.config, "provider")));
    }
    if (!ok || head.bodyLength > pipeline.config.maxRequestBodySize) return undefined;
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
      if (HOP.has(n) || n === "host") continue;
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
    const out = `${head.method} ${head.path} HTTP/1.1\r\nhost: ${endpoint.address}\r\n${rest}${forwardedLines(xff, peer, proto, fhost !== null, head.host)}\r\n`;
    return {
      direction: "provider",
      service: config.service.name,
      version: config.service.version,
      route: "",
      endpoint,
      bytes: Buffer.from(out, "latin1"),
    };
  };
}

/** One buffer of several: a view when they lie back to back in one received chunk, else a copy. */
function joined(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const first = parts[0]!;
  let end = first.byteOffset + first.byteLength;
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i]!;
    if (p.buffer !== first.buffer || p.byteOffset !== end) return Buffer.concat(parts);
    end += p.byteLength;
  }
  return new Uint8Array(first.buffer, first.byteOffset, end - first.byteOffset);
}

// ---------------------------------------------------------------- connections

/** Where a fast request goes and what is sent there; from a Director. */
export interface Target {
  direction: "consumer" | "provider";
  /** The service label of the metrics (the destination, or this sidecar's own on the provider side). */
  service: string;
  /** The version label (the endpoint's tag, or this sidecar's version on the provider side). */
  version: string;
  route: string;
  endpoint: Endpoint;
  /** The rewritten request head. */
  bytes: Uint8Array;
}

/** Decides a request's fast path: its target, or undefined for the regular engine. */
export type Director = (head: RequestHead, peer: string) => Target | undefined;

interface Exchange extends Target {
  head: RequestHead;
  start: number;
  upstream: Upstream | null;
  /** Response head sent to the client. */
  answered: boolean;
  chunked: boolean;
  status: number;
  retried: boolean;
  /** Request body bytes still to come from the client and go upstream. */
  bodyLeft: number;
}

interface Client {
  socket: Socket<Client>;
  peer: string;
  buf: Buffer | null;
  ex: Exchange | null;
  /** Piped to the regular engine from now on. */
  pipe: Socket<Pipe> | null;
  pipeQueue: Uint8Array[] | null;
  out: Uint8Array[];
  /** Body bytes of a request answered before it was all sent: read and dropped. */
  discard: number;
  /** While an upstream read is parsed: what it makes for the client, written as one send. */
  corked: Uint8Array[] | null;
  /** End the connection once what is corked has been written. */
  endAfterFlush: boolean;
  closed: boolean;
}

interface Pipe {
  client: Client;
  /** Bytes from the client the regular engine has not taken yet (the client is paused). */
  out: Uint8Array[];
}

interface Upstream {
  socket: Socket<Upstream> | null;
  pool: Upstream[];
  address: string;
  parser: ResponseParser;
  client: Client | null;
  /** Has carried a response already (a close before any byte may be a stale keep-alive). */
  reused: boolean;
  received: boolean;
  keepAlive: boolean;
  closeDelimited: boolean;
  paused: boolean;
  /** Request body bytes the socket has not taken yet (the client is paused meanwhile). */
  out: Uint8Array[];
}

export interface FastPathOptions {
  idleTimeoutSeconds: number;
}

/**
 * Serves a consumer or provider port (`direct` decides which requests are fast): the fast path
 * here, everything else piped to `regular` (bound on 127.0.0.1:0; its handler learns the real
 * peer through `peerOf`).
 */
export function serveFastPath(
  host: string,
  port: number,
  rt: Runtime,
  direct: Director,
  regular: Bound,
  peers: Map<number, string>,
  options: FastPathOptions,
): Bound {
  const clients = new Set<Client>();
  const pools = new Map<string, Upstream[]>();
  let inflight = 0;
  let stopping = false;
  const lastSeries = new WeakMap<Endpoint, { pipeline: Pipeline; service: string; status: number; direction: string; version: string; series: RequestSeries }>();
  let onIdle: (() => void) | null = null;

  // ---- client side

  function write(c: Client, data: Uint8Array): void {
    if (c.closed) return;
    if (c.corked) return void c.corked.push(data);
    if (!push(c.socket, c.out, data)) {
      const up = c.ex?.upstream;
      if (up && !up.paused) {
        up.paused = true;
        up.socket?.pause();
      }
      c.pipe?.pause();
    }
  }

  function drain(c: Client): void {
    if (!flush(c.socket, c.out)) return;
    const up = c.ex?.upstream;
    if (up?.paused) {
      up.paused = false;
      up.socket?.resume();
    }
    c.pipe?.resume();
  }

  /** Client bytes to the regular engine, pausing the client while the pipe is full. */
  function toRegular(c: Client, data: Uint8Array): void {
    if (!push(c.pipe!, c.pipe!.data.out, data)) c.socket.pause();
  }

  /** Looks at buffered bytes: starts the next exchange, or hands the connection over. */
  function advance(c: Client): void {
    while (!c.ex && !c.pipe && !c.closed && c.buf && c.buf.length) {
      if (stopping) return void c.socket.end();
      const buf = c.buf;
      const end = findHeadEnd(buf, 0);
      if (end < 0) {
        // Incomplete: wait for more, unless it cannot become a head the fast path takes (too
        // long, bare-LF lines, not starting with a method token: the regular engine answers).
        if (buf.length > MAX_HEAD || buf.includes("\n\n") || !startsWithMethod(buf)) toPipe(c);
        return;
      }
      const head = end <= MAX_HEAD ? parseHead(buf, 0, end) : undefined;
      const target = head && direct(head, c.peer);
      const ex: Exchange | undefined = target && {
        head,
        ...target,
        start: performance.now(),
        upstream: null,
        answered: false,
        chunked: false,
        status: 0,
        retried: false,
        bodyLeft: head.bodyLength,
      };
      if (!ex) return toPipe(c);
      c.buf = end === buf.length ? null : buf.subarray(end);
      send(c, ex); // the idle timer stays: it is re-armed if it fires mid-exchange
    }
  }

  /** Hands the connection to the regular engine: buffered bytes first, then everything. */
  function toPipe(c: Client): void {
    if (c.pipe || c.closed) return;
    c.pipeQueue = c.buf ? [c.buf] : [];
    c.buf = null;
    c.socket.timeout(0); // the regular engine keeps its own idle timer
    void Bun.connect<Pipe>({
      hostname: "127.0.0.1",
      port: regular.port,
      data: { client: c, out: [] },
      socket: pipeHandlers,
    }).then(
      (s) => {
        if (c.closed) return void s.end();
        c.pipe = s;
        peers.set(s.localPort, c.peer);
        for (const d of c.pipeQueue!) toRegular(c, d);
        c.pipeQueue = null;
      },
      () => c.socket.end(),
    );
  }

  const pipeHandlers = {
    data(s: Socket<Pipe>, chunk: Buffer) {
      write(s.data.client, chunk); // pauses the pipe while the client cannot take more
    },
    drain(s: Socket<Pipe>) {
      if (flush(s, s.data.out)) s.data.client.socket.resume();
    },
    close(s: Socket<Pipe>) {
      peers.delete(s.localPort);
      s.data.client.socket.end();
    },
    end(s: Socket<Pipe>) {
      s.end();
    },
    error() {},
  };

  // ---- upstream side

  function send(c: Client, ex: Exchange): void {
    c.ex = ex;
    rt.metrics.fastPath.value++;
    inflight++;
    rt.inflight++;
    ex.endpoint.active++;
    const pool = pools.get(ex.endpoint.address);
    let up: Upstream | undefined;
    while (pool?.length && !(up = pool.pop())?.socket) up = undefined;
    if (up) return attach(c, ex, up);
    void connect(ex.endpoint).then(
      (u) => {
        if (c.ex !== ex) return u.socket?.end();
        attach(c, ex, u);
      },
      (err) => fail(c, ex, new MeshError("upstream_connect_failure", `could not connect to ${ex.endpoint.address}: ${(err as { code?: string }).code ?? (err as Error).message}`)),
    );
  }

  async function connect(e: Endpoint): Promise<Upstream> {
    let pool = pools.get(e.address);
    if (!pool) pools.set(e.address, (pool = []));
    const u: Upstream = {
      socket: null,
      pool,
      address: e.address,
      parser: null!,
      client: null,
      reused: false,
      received: false,
      keepAlive: true,
      closeDelimited: false,
      paused: false,
      out: [],
    };
    u.parser = new ResponseParser(sinkOf(u));
    u.parser.lean = true; // the head goes on as received unless it has hop-by-hop headers
    const { host: hostname, port } = splitAddress(e.address);
    u.socket = await Bun.connect<Upstream>({ hostname, port, data: u, socket: upstreamHandlers });
    return u;
  }

  function attach(c: Client, ex: Exchange, u: Upstream): void {
    ex.upstream = u;
    u.client = c;
    u.received = false;
    u.parser.noBody = ex.head.method === "HEAD";
    // The head, with the body bytes already here, in one write.
    const body = takeBody(c, ex);
    toUpstream(c, u, body ? Buffer.concat([ex.bytes, body]) : ex.bytes);
  }

  /** Body bytes of the exchange from what the client sent so far (the rest stays buffered). */
  function takeBody(c: Client, ex: Exchange): Uint8Array | undefined {
    const buf = c.buf;
    if (ex.bodyLeft === 0 || !buf) return undefined;
    const n = Math.min(ex.bodyLeft, buf.length);
    ex.bodyLeft -= n;
    c.buf = n === buf.length ? null : buf.subarray(n);
    return buf.subarray(0, n);
  }

  /** Request bytes upstream, pausing the client while the upstream socket is full. */
  function toUpstream(c: Client, u: Upstream, data: Uint8Array): void {
    if (!push(u.socket!, u.out, data)) c.socket.pause();
  }

  function sinkOf(u: Upstream) {
    return {
      onHead(head: ResponseHead) {
        const c = u.client!;
        const ex = c.ex!;
        if (head.status < 200) return; // interim (103 Early Hints): the final response follows
        u.keepAlive = head.keepAlive;
        u.closeDelimited = head.framing === "close";
        ex.chunked = head.framing === "chunked" || head.framing === "close";
        ex.status = head.status;
        if (!head.hopByHop && !ex.chunked && head.raw[7] === 49 /* HTTP/1.1 */) {
          // Nothing to take out: the head goes on as the app wrote it (with the body bytes
          // read with it, one contiguous write).
          write(c, head.raw);
          ex.answered = true;
          return answered(ex, undefined);
        }
        const h = forwardable(headerLines(head.raw));
        let out = `HTTP/1.1 ${head.status} ${head.statusText}\r\n`;
        for (let i = 0; i < h.length; i += 2) out += `${h[i]!.toLowerCase()}: ${h[i + 1]}\r\n`;
        if (ex.chunked) out += "transfer-encoding: chunked\r\n";
        out += CRLF;
        write(c, Buffer.from(out, "latin1"));
        ex.answered = true;
        answered(ex, undefined);
      },
      onBody(chunk: Uint8Array) {
        const c = u.client!;
        if (c.ex!.chunked) {
          write(c, Buffer.from(`${chunk.byteLength.toString(16)}\r\n`, "latin1"));
          write(c, chunk);
          write(c, Buffer.from(CRLF, "latin1"));
        } else write(c, chunk);
      },
      onEnd() {
        const c = u.client!;
        const ex = c.ex!;
        if (ex.chunked) write(c, LAST_CHUNK);
        finish(c, ex, u.keepAlive && !u.closeDelimited);
      },
    };
  }

  /** Counts the request (at response headers, as runChain does). */
  function answered(ex: Exchange, error: MeshError | undefined): void {
    inflight--;
    rt.inflight--;
    ex.endpoint.active--;
    const ms = performance.now() - ex.start;
    const pipeline = rt.pipeline;
    // The series of the last request to this endpoint, when this one has the same labels.
    let last = lastSeries.get(ex.endpoint);
    if (!last || last.pipeline !== pipeline || last.service !== ex.service || last.status !== ex.status || error || last.direction !== ex.direction || last.version !== ex.version) {
      const series = rt.metrics.series({
        direction: ex.direction,
        service: ex.service,
        app: pipeline.config.service.app,
        version: ex.version,
        route: ex.route,
        endpoint: ex.endpoint.address,
        status: ex.status,
        errorCode: error?.code ?? "",
      });
      last = { pipeline, service: ex.service, status: ex.status, direction: ex.direction, version: ex.version, series };
      if (!error) lastSeries.set(ex.endpoint, last);
    }
    rt.metrics.count(last.series, ex.status, ms / 1000);
    rt.telemetry.stats.record(ex.direction, ex.service, ex.status, error !== undefined || ex.status >= 500, ms);
  }

  /** The exchange is over: the upstream connection goes back to its pool, the next request starts. */
  function finish(c: Client, ex: Exchange, reusable: boolean): void {
    const u = ex.upstream;
    c.ex = null;
    if (u?.out.length) reusable = false; // request bytes still queued for it
    if (ex.bodyLeft > 0) {
      // Answered before the whole body was sent (an early 413, say): drop the rest of it.
      reusable = false;
      c.discard = ex.bodyLeft;
      ex.bodyLeft = 0;
      c.socket.resume();
      if (c.buf) {
        const n = Math.min(c.discard, c.buf.length);
        c.discard -= n;
        c.buf = n === c.buf.length ? null : c.buf.subarray(n);
      }
    }
    if (u) {
      u.client = null;
      u.reused = true;
      if (reusable && u.socket && u.pool.length < MAX_IDLE && !stopping) {
        u.socket.timeout(UPSTREAM_IDLE_SECONDS);
        u.pool.push(u);
      } else u.socket?.end();
    }
    if (stopping) {
      // Ends once what is corked has been written (see the upstream data handler).
      if (c.corked) c.endAfterFlush = true;
      else c.socket.end();
      onIdle?.();
      return;
    }
    c.socket.timeout(options.idleTimeoutSeconds);
    advance(c);
  }

  /** The upstream failed before the response head: the JSON error the regular path would send. */
  function fail(c: Client, ex: Exchange, error: MeshError): void {
    ex.status = error.status;
    answered(ex, error);
    const res = errorResponse(error);
    void res.arrayBuffer().then((body) => {
      let out = `HTTP/1.1 ${res.status} ${res.statusText}\r\n`;
      res.headers.forEach((v, n) => (out += `${n}: ${v}\r\n`));
      out += `content-length: ${body.byteLength}\r\n\r\n`;
      write(c, Buffer.concat([Buffer.from(out, "latin1"), new Uint8Array(body)]));
      ex.upstream = null;
      finish(c, ex, false);
    });
  }

  function upstreamClosed(u: Upstream): void {
    u.socket = null;
    const i = u.pool.indexOf(u);
    if (i >= 0) u.pool.splice(i, 1);
    const c = u.client;
    if (!c?.ex) return;
    const ex = c.ex;
    if (u.closeDelimited) {
      try {
        u.parser.finish();
      } catch {
        // cut short: handled below
      }
      if (!c.ex) return; // onEnd finished it
    }
    if (!ex.answered && !u.received && u.reused && !ex.retried && ex.head.bodyLength === 0) {
      // A kept-alive connection the endpoint had closed: once more on a fresh one.
      ex.retried = true;
      ex.upstream = null;
      u.client = null;
      void connect(ex.endpoint).then(
        (n) => (c.ex === ex ? attach(c, ex, n) : n.socket?.end()),
        (err) => fail(c, ex, new MeshError("upstream_connect_failure", `could not connect to ${ex.endpoint.address}: ${(err as Error).message}`)),
      );
      return;
    }
    if (!ex.answered) {
      ex.upstream = null;
      return fail(c, ex, new MeshError("upstream_reset", `connection to ${ex.endpoint.address} closed before a response`));
    }
    // Cut off mid-response: the client must see the response is incomplete.
    c.socket.end();
  }

  const upstreamHandlers = {
    data(s: Socket<Upstream>, chunk: Buffer) {
      const u = s.data;
      const c = u.client;
      if (!c) return void s.end(); // bytes nobody asked for
      u.received = true;
      // Head and body of a response read at once leave in one send (one syscall, one packet).
      const corked: Uint8Array[] = (c.corked = []);
      try {
        u.parser.execute(chunk);
        c.corked = null;
        if (corked.length) write(c, joined(corked));
        if (c.endAfterFlush) c.socket.end();
      } catch (err) {
        c.corked = null;
        if (corked.length) write(c, joined(corked));
        const ex = c.ex;
        u.client = null;
        s.end();
        if (ex && !ex.answered) {
          ex.upstream = null;
          fail(c, ex, new MeshError("upstream_reset", `bad response from ${u.address}: ${(err as Error).message}`));
        } else c.socket.end();
      }
    },
    drain(s: Socket<Upstream>) {
      if (flush(s, s.data.out)) s.data.client?.socket.resume();
    },
    timeout(s: Socket<Upstream>) {
      // Idle in the pool: closed. Busy (a slow or streaming response): not a timeout, re-armed.
      if (!s.data.client) s.end();
      else s.timeout(UPSTREAM_IDLE_SECONDS);
    },
    end(s: Socket<Upstream>) {
      s.end();
    },
    close(s: Socket<Upstream>) {
      upstreamClosed(s.data);
    },
    error() {},
  };

  const listener: TCPSocketListener<Client> = Bun.listen<Client>({
    hostname: host,
    port,
    socket: {
      open(socket) {
        const c: Client = { socket, peer: socket.remoteAddress, buf: null, ex: null, pipe: null, pipeQueue: null, out: [], discard: 0, corked: null, endAfterFlush: false, closed: false };
        socket.data = c;
        clients.add(c);
        socket.timeout(options.idleTimeoutSeconds);
      },
      data(socket, chunk) {
        const c = socket.data;
        if (c.pipe) return void toRegular(c, chunk);
        if (c.pipeQueue) return void c.pipeQueue.push(chunk);
        let data: Buffer = chunk;
        if (c.discard > 0) {
          const n = Math.min(c.discard, data.length);
          c.discard -= n;
          if (n === data.length) return;
          data = data.subarray(n);
        }
        c.buf = c.buf ? Buffer.concat([c.buf, data]) : data;
        const ex = c.ex;
        const u = ex?.upstream;
        if (ex && u && ex.bodyLeft > 0) {
          const body = takeBody(c, ex);
          if (body) toUpstream(c, u, body);
        }
        advance(c);
      },
      drain(socket) {
        drain(socket.data);
      },
      timeout(socket) {
        // Idle between requests: closed. Mid-exchange (streams may be quiet): re-armed.
        if (!socket.data.ex && !socket.data.pipe) socket.end();
        else if (!socket.data.pipe) socket.timeout(options.idleTimeoutSeconds);
      },
      end(socket) {
        // A client's FIN ends the connection and cancels what is in flight, as nginx does by
        // default and as the regular engines do (a client that only half-closes loses its answer).
        socket.end();
      },
      close(socket) {
        const c = socket.data;
        c.closed = true;
        clients.delete(c);
        c.pipe?.end();
        const ex = c.ex;
        if (ex) {
          // The client left mid-exchange: that upstream connection cannot be reused.
          if (!ex.answered) {
            const error = new MeshError("upstream_reset", "the downstream client went away");
            ex.status = error.status;
            answered(ex, error);
          }
          ex.upstream?.socket?.end();
          if (ex.upstream) ex.upstream.client = null;
          c.ex = null;
        }
        onIdle?.();
      },
      error() {},
    },
  });

  return {
    port: listener.port,
    get pendingRequests() {
      return inflight + regular.pendingRequests;
    },
    get pendingWebSockets() {
      return regular.pendingWebSockets;
    },
    async stop(closeActive) {
      stopping = true;
      listener.stop(closeActive);
      for (const c of clients) if (!c.ex && !c.pipe) c.socket.end();
      if (closeActive) for (const c of clients) c.socket.terminate();
      const regularDone = regular.stop(closeActive);
      // Until every exchange has sent its whole response (the client's connection then closes).
      const busy = () => [...clients].some((c) => c.ex !== null);
      if (busy()) await new Promise<void>((r) => (onIdle = () => !busy() && r()));
      await regularDone;
      for (const pool of pools.values()) for (const u of pool) u.socket?.end();
    },
  };
}
