/**
 * The fast path of the consumer and provider ports (`listen.fastPath`): a request whose chain
 * has nothing to do is relayed over raw sockets, head rewritten as the regular path would, body
 * bytes passed through, without building a Request, Headers or Response. Everything else (a
 * chunked upload, an upgrade, CONNECT, egress, errors, a service with routes or policies, an
 * access log...) is piped byte for byte to the regular engine (Bun.serve or node:http)
 * listening on a private loopback port, so its behaviour is the regular one.
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
 * upstream TLS, the access log off; on the provider side, the default provider chain without
 * a rate limit or access log, and a local port known for it (fastdirect.ts decides; the head
 * is read and rewritten on its bytes: fasthead.ts; with tracing on, the trace decision and the
 * span are made here too: fasttrace.ts). Once a connection has been piped it stays piped.
 */
import type { Socket, TCPSocketListener } from "bun";
import type { Pipeline } from "../pipeline/build.ts";
import { errorResponse, MeshError } from "../pipeline/errors.ts";
import { splitAddress, type Endpoint } from "../upstream/cluster.ts";
import { forwardable } from "../upstream/h1/headers.ts";
import { findHeadEnd, headerLines, ResponseParser, type ResponseHead } from "../upstream/h1/parser.ts";
import type { RequestSeries } from "../telemetry/metrics.ts";
import type { Series as StatsSeries } from "../telemetry/stats.ts";
import { newMemo, type DirectMemo, type Director, type Target } from "./fastdirect.ts";
import { headBound, MAX_HEAD, parseHead, startsWithMethod, writeHead, type RequestHead } from "./fasthead.ts";
import type { Runtime } from "./runtime.ts";
import type { Bound } from "./serve.ts";

const CRLF = "\r\n";
const LAST_CHUNK = Buffer.from("0\r\n\r\n", "latin1");
/** The CRLF after a chunk's data (written as is, never changed). */
const CHUNK_END = Buffer.from(CRLF, "latin1");
/** Where request heads are encoded before their write (see `attach`). */
const SCRATCH = Buffer.allocUnsafe(64 * 1024);
/** Idle upstream connections kept per endpoint, and for how long (seconds). */
const MAX_IDLE = 256;
const UPSTREAM_IDLE_SECONDS = 15;

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

/**
 * As `push`, for the first `n` bytes of a buffer that is reused once this returns (the request
 * head's): what has to wait is copied, never queued as a view of it.
 */
export function pushReused(
  socket: { write(data: Uint8Array, byteOffset?: number, byteLength?: number): number },
  queue: Uint8Array[],
  buf: Uint8Array,
  n: number,
): boolean {
  if (queue.length) {
    queue.push(copyOf(buf, 0, n));
    return false;
  }
  const w = socket.write(buf, 0, n);
  if (w >= n) return true;
  queue.push(copyOf(buf, Math.max(0, w), n));
  return false;
}

/** A copy of buf[from, to): Uint8Array's slice (a Buffer's own slice is a view). */
const copyOf = (buf: Uint8Array, from: number, to: number): Uint8Array => Uint8Array.prototype.slice.call(buf, from, to);

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
  /** What the director keeps for this connection. */
  memo: DirectMemo;
  buf: Buffer | null;
  ex: Exchange | null;
  /** Piped to the regular engine from now on. */
  pipe: Socket<Pipe> | null;
  pipeQueue: Uint8Array[] | null;
  out: Uint8Array[];
  /** Body bytes of a request answered before it was all sent: read and dropped. */
  discard: number;
  /** An upstream read is being parsed: what it makes for the client is corked, then sent at once. */
  corking: boolean;
  /** What is corked (one array per connection, emptied at each uncork). */
  corked: Uint8Array[];
  /**
   * The last corked bytes when they go on as received: passBuf[passStart, passEnd) of the read,
   * a range until something else is corked (a view is made only then: usually never, the
   * whole read goes on as it came).
   */
  passBuf: Uint8Array | null;
  passStart: number;
  passEnd: number;
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
  const lastSeries = new WeakMap<
    Endpoint,
    { pipeline: Pipeline; service: string; status: number; direction: string; version: string; series: RequestSeries; stats: StatsSeries }
  >();
  let onIdle: (() => void) | null = null;

  // ---- client side

  function write(c: Client, data: Uint8Array): void {
    if (c.closed) return;
    if (c.corking) {
      if (c.passBuf) spill(c);
      return void c.corked.push(data);
    }
    if (!push(c.socket, c.out, data)) {
      const up = c.ex?.upstream;
      if (up && !up.paused) {
        up.paused = true;
        up.socket?.pause();
      }
      c.pipe?.pause();
    }
  }

  /** Bytes of an upstream read that go on unchanged: corked as a range (see `passBuf`). */
  function pass(c: Client, buf: Uint8Array, start: number, end: number): void {
    if (!c.corking) return write(c, buf.subarray(start, end));
    if (c.passBuf === buf && c.passEnd === start) return void (c.passEnd = end);
    if (c.passBuf) spill(c);
    c.passBuf = buf;
    c.passStart = start;
    c.passEnd = end;
  }

  /** The corked range becomes a corked view (something else is corked after it). */
  function spill(c: Client): void {
    c.corked.push(c.passBuf!.subarray(c.passStart, c.passEnd));
    c.passBuf = null;
  }

  /** Ends corking: what the read made for the client goes as one write. */
  function uncork(c: Client): void {
    const corked = c.corked;
    const b = c.passBuf;
    c.corking = false;
    if (b && !corked.length) {
      c.passBuf = null;
      return write(c, c.passStart === 0 && c.passEnd === b.length ? b : b.subarray(c.passStart, c.passEnd));
    }
    if (b) spill(c);
    if (corked.length) {
      const data = joined(corked);
      corked.length = 0;
      write(c, data);
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
      const head = end <= MAX_HEAD ? parseHead(buf, end) : undefined;
      const target = head && direct(head, c.peer, c.memo);
      if (!target) return toPipe(c);
      // Built field by field (not spread from the target): one object shape for every exchange.
      const ex: Exchange = {
        head: head!,
        direction: target.direction,
        service: target.service,
        version: target.version,
        route: target.route,
        endpoint: target.endpoint,
        hostLine: target.hostLine,
        drop: target.drop,
        tail: target.tail,
        tailText: target.tailText,
        untraced: target.untraced,
        requestSeq: target.requestSeq,
        trace: target.trace,
        start: performance.now(),
        upstream: null,
        answered: false,
        chunked: false,
        status: 0,
        retried: false,
        bodyLeft: head!.bodyLength,
      };
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
    inflight++;
    rt.metrics.fastPath.value++;
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
    // Closes it once idle in the pool that long (busy, the handler re-arms it).
    u.socket.timeout(UPSTREAM_IDLE_SECONDS);
    return u;
  }

  function attach(c: Client, ex: Exchange, u: Upstream): void {
    ex.upstream = u;
    u.client = c;
    u.received = false;
    u.parser.noBody = ex.head.method === "HEAD";
    // The head, with the body bytes already here, in one write: written into one buffer
    // reused by every request (the socket copies what it takes).
    const body = takeBody(c, ex);
    const bound = headBound(ex.head, ex) + (body ? body.byteLength : 0);
    const out = bound > SCRATCH.length ? Buffer.allocUnsafe(bound) : SCRATCH;
    let n = writeHead(out, ex.head, ex);
    if (body) {
      out.set(body, n);
      n += body.byteLength;
    }
    if (!pushReused(u.socket!, u.out, out, n)) c.socket.pause();
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
        if (!head.hopByHop && !ex.chunked && head.source[head.start + 7] === 49 /* HTTP/1.1 */) {
          // Nothing to take out: the head goes on as the app wrote it (with the body bytes
          // read with it, one contiguous write).
          pass(c, head.source, head.start, head.end);
          ex.answered = true;
          return answered(ex, undefined);
        }
        const h = forwardable(headerLines(head));
        let out = `HTTP/1.1 ${head.status} ${head.statusText}\r\n`;
        for (let i = 0; i < h.length; i += 2) out += `${h[i]!.toLowerCase()}: ${h[i + 1]}\r\n`;
        if (ex.chunked) out += "transfer-encoding: chunked\r\n";
        out += CRLF;
        write(c, Buffer.from(out, "latin1"));
        ex.answered = true;
        answered(ex, undefined);
      },
      onBody(buf: Uint8Array, start: number, end: number) {
        const c = u.client!;
        if (c.ex!.chunked) {
          write(c, Buffer.from(`${(end - start).toString(16)}\r\n`, "latin1"));
          pass(c, buf, start, end);
          write(c, CHUNK_END);
        } else pass(c, buf, start, end);
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
      const stats = rt.telemetry.stats.series(ex.direction, ex.service);
      last = { pipeline, service: ex.service, status: ex.status, direction: ex.direction, version: ex.version, series, stats };
      if (!error) lastSeries.set(ex.endpoint, last);
    }
    rt.metrics.count(last.series, ex.status, ms / 1000);
    rt.telemetry.stats.count(last.stats, ex.status, error !== undefined || ex.status >= 500, ms);
    const trace = ex.trace;
    if (trace) {
      trace.ctx.attempts = 1;
      rt.telemetry.endSpan(trace.hop, trace.ctx, ex, error);
    }
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
      // Pooled with its idle timer as is: Bun re-arms a socket's timer on every read and write,
      // and the response just read was its last activity (set at connect: see `connect`).
      if (reusable && u.socket && u.pool.length < MAX_IDLE && !stopping) u.pool.push(u);
      else u.socket?.end();
    }
    if (stopping) {
      // Ends once what is corked has been written (see the upstream data handler).
      if (c.corking) c.endAfterFlush = true;
      else c.socket.end();
      onIdle?.();
      return;
    }
    // The client's idle timer needs no re-arming: Bun re-arms it on every read and write (the
    // response written now among them), and it is set at open.
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
      // Head and body of a response read at once leave in one send (one syscall, one packet):
      // the read itself when it was exactly what goes on (a whole response, passed as received).
      c.corking = true;
      try {
        u.parser.execute(chunk);
        uncork(c);
        if (c.endAfterFlush) c.socket.end();
      } catch (err) {
        uncork(c);
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
        const c: Client = { socket, peer: socket.remoteAddress, memo: newMemo(), buf: null, ex: null, pipe: null, pipeQueue: null, out: [], discard: 0, corking: false, corked: [], passBuf: null, passStart: 0, passEnd: 0, endAfterFlush: false, closed: false };
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
