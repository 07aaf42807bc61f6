/**
 * One HTTP/1.1 connection to an upstream endpoint over `Bun.connect`, carrying one request at a
 * time (no pipelining). Writes that the kernel takes only in part are queued and finished in
 * `drain()` (Bun.connect sockets do not buffer: an unchecked short write truncates). Response
 * bodies are streamed with back-pressure (the socket is paused while the downstream reader
 * lags) or, when the whole response came in with its headers, handed on as one buffer.
 */
import { countBodyBytes } from "../gcPacing.ts";
import type { Socket, SocketHandler } from "bun";
import { MeshError } from "../../pipeline/errors.ts";
import { ResponseParser, type ParserSink, type ResponseHead } from "./parser.ts";
import { forwardable } from "./headers.ts";

/** The pool a connection goes back to when its exchange ends cleanly. */
export interface ConnectionOwner {
  readonly address: string;
  release(conn: Connection): void;
  forget(conn: Connection): void;
}

/** Rejects an exchange on a reused connection that died before answering: safe to replay. */
export class StaleConnection extends Error {
  override name = "StaleConnection";
}

/** Body bytes buffered in the response stream before the socket is paused. */
const BODY_HIGH_WATER = 64 * 1024;
const encoder = new TextEncoder();
const CRLF = new Uint8Array([13, 10]);
const LAST_CHUNK = new Uint8Array([48, 13, 10, 13, 10]); // "0\r\n\r\n"

interface Exchange {
  resolve(res: Response): void;
  reject(err: unknown): void;
  signal: AbortSignal;
  onAbort: () => void;
  /** May be replayed on a fresh connection if this one turns out dead. */
  replayable: boolean;
  received: boolean;
  head: ResponseHead | null;
  settled: boolean;
  ended: boolean;
  /** The request (head and body) has been written out. */
  sent: boolean;
  /** Body chunks received before the Response was handed out. */
  chunks: Uint8Array[];
  controller: ReadableStreamDefaultController<Uint8Array> | null;
  reader: ReadableStreamDefaultReader<Uint8Array> | null;
}

export class Connection implements ParserSink {
  socket: Socket<Connection> | null = null;
  readonly parser = new ResponseParser(this);
  /** Has answered at least one request (a dead reused one may be retried). */
  reused = false;
  closed = false;
  #ex: Exchange | null = null;
  #queue: Uint8Array[] = [];
  #drained: (() => void) | null = null;
  /** Reading is paused while the response body's reader lags. */
  #paused = false;

  constructor(readonly owner: ConnectionOwner) {}

  get busy(): boolean {
    return this.#ex !== null;
  }

  /**
   * Sends one request and resolves with the response once its headers are in. `head` is the
   * request line and headers (latin1 bytes); `body` follows raw, or chunk-encoded if `chunked`.
   */
  send(
    head: Uint8Array,
    body: ReadableStream<Uint8Array> | Uint8Array | null,
    chunked: boolean,
    noResponseBody: boolean,
    signal: AbortSignal,
    idempotent: boolean,
  ): Promise<Response> {
    return new Promise<Response>((resolve, reject) => {
      const ex: Exchange = {
        resolve,
        reject,
        signal,
        onAbort: () => this.#abort(ex),
        replayable: this.reused && idempotent && !(body instanceof ReadableStream),
        received: false,
        head: null,
        settled: false,
        ended: false,
        sent: false,
        chunks: [],
        controller: null,
        reader: null,
      };
      this.#ex = ex;
      this.parser.noBody = noResponseBody;
      signal.addEventListener("abort", ex.onAbort, { once: true });
      if (body === null) {
        this.write(head);
        ex.sent = true;
      } else if (body instanceof Uint8Array) {
        // One write for head and a small body: one packet, one syscall.
        if (body.byteLength <= 16 * 1024) this.write(concat(head, body));
        else this.write(head), this.write(body);
        ex.sent = true;
      } else {
        this.write(head);
        ex.reader = body.getReader();
        void this.#pump(ex, ex.reader, chunked);
      }
    });
  }

  /** Streams a request body, waiting in drain() whenever the socket is full. */
  async #pump(ex: Exchange, reader: ReadableStreamDefaultReader<Uint8Array>, chunked: boolean): Promise<void> {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (this.#ex !== ex || this.closed) return;
        if (done) {
          if (chunked) this.write(LAST_CHUNK);
          ex.sent = true;
          ex.reader = null;
          if (ex.ended) this.#finish(ex);
          return;
        }
        if (value.byteLength === 0) continue;
        countBodyBytes(value.byteLength);
        let full: boolean;
        if (chunked) {
          this.write(encoder.encode(`${value.byteLength.toString(16)}\r\n`));
          this.write(value);
          full = this.write(CRLF);
        } else full = this.write(value);
        if (!full) await this.#waitDrain();
      }
    } catch (err) {
      // The downstream request body failed (the client went away mid-upload).
      if (this.#ex === ex) this.#fail(ex, new MeshError("upstream_reset", "the request body could not be read", { cause: err }));
    }
  }

  /** Writes now or queues behind earlier bytes; false when something is left to send. */
  write(data: Uint8Array): boolean {
    if (this.#queue.length) {
      this.#queue.push(data);
      return false;
    }
    const n = this.socket!.write(data);
    if (n >= data.byteLength) return true;
    this.#queue.push(n > 0 ? data.subarray(n) : data);
    return false;
  }

  #waitDrain(): Promise<void> {
    return new Promise((r) => (this.#drained = r));
  }

  onDrain(): void {
    while (this.#queue.length) {
      const data = this.#queue[0]!;
      const n = this.socket!.write(data);
      if (n < data.byteLength) {
        if (n > 0) this.#queue[0] = data.subarray(n);
        return;
      }
      this.#queue.shift();
    }
    const d = this.#drained;
    this.#drained = null;
    d?.();
  }

  onData(chunk: Uint8Array): void {
    const ex = this.#ex;
    if (!ex) return this.destroy(); // bytes nobody asked for: the connection is unusable
    ex.received = true;
    try {
      this.parser.execute(chunk);
    } catch (err) {
      return this.#fail(ex, new MeshError("upstream_reset", `bad response from ${this.owner.address}: ${(err as Error).message}`, { cause: err }));
    }
    if (ex.head && !ex.settled) this.#settle(ex);
  }

  // ---- ParserSink ----

  onHead(head: ResponseHead): void {
    const ex = this.#ex;
    if (!ex) throw new Error("a response nobody asked for");
    if (head.status < 200) return; // interim (100 Continue, 103): wait for the final one
    ex.head = head;
  }

  onBody(buf: Uint8Array, start: number, end: number): void {
    const ex = this.#ex!;
    const chunk = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
    countBodyBytes(chunk.byteLength);
    if (ex.controller) {
      ex.controller.enqueue(chunk);
      if (ex.controller.desiredSize! <= 0 && !this.#paused) {
        this.#paused = true;
        this.socket?.pause();
      }
    } else ex.chunks.push(chunk);
  }

  onEnd(): void {
    const ex = this.#ex!;
    ex.ended = true;
    if (ex.controller) {
      ex.controller.close();
      ex.controller = null;
    }
    if (!ex.settled) this.#settle(ex);
    if (ex.sent) this.#finish(ex);
    else {
      // Answered before the request body was sent (an early 413, say): stop uploading.
      this.#detach(ex);
      ex.reader?.cancel().catch(() => {});
      this.destroy();
    }
  }

  /** Hands the Response out: a buffer when the body is all here, else a stream. */
  #settle(ex: Exchange): void {
    ex.settled = true;
    const head = ex.head!;
    const headers = new Headers();
    const h = forwardable(head.headers);
    for (let i = 0; i < h.length; i += 2) headers.append(h[i]!, h[i + 1]!);
    let body: BodyInit | null = null;
    if (ex.ended) {
      const c = ex.chunks;
      body = (c.length === 0 ? null : c.length === 1 ? c[0]! : Buffer.concat(c)) as Uint8Array<ArrayBuffer> | null;
    } else {
      const chunks = ex.chunks;
      body = new ReadableStream<Uint8Array>(
        {
          start: (controller) => {
            for (const c of chunks) controller.enqueue(c);
            ex.controller = controller;
          },
          pull: () => this.#resume(),
          cancel: () => {
            // The downstream client stopped reading: this connection is mid-response, drop it.
            if (this.#ex === ex) {
              this.#detach(ex);
              this.destroy();
            }
          },
        },
        { highWaterMark: BODY_HIGH_WATER, size: (c?: Uint8Array) => c?.byteLength ?? 0 },
      );
    }
    ex.chunks = [];
    ex.resolve(new Response(body, { status: head.status, statusText: head.statusText, headers }));
  }

  #resume(): void {
    if (this.#paused) {
      this.#paused = false;
      this.socket?.resume();
    }
  }

  /** The exchange ended cleanly: back to the pool, or closed. */
  #finish(ex: Exchange): void {
    this.#detach(ex);
    // The last body bytes may have paused reading: the next response must be read.
    this.#resume();
    this.reused = true;
    if (ex.head!.keepAlive && !this.closed && this.parser.idle) this.owner.release(this);
    else this.destroy();
  }

  #detach(ex: Exchange): void {
    if (this.#ex === ex) this.#ex = null;
    ex.signal.removeEventListener("abort", ex.onAbort);
  }

  #abort(ex: Exchange): void {
    const reason = ex.signal.reason;
    this.#fail(ex, reason instanceof MeshError ? reason : new MeshError("upstream_reset", "the downstream client went away", { cause: reason }));
  }

  /** Ends the exchange with an error: before headers the promise rejects, after them the body errors. */
  #fail(ex: Exchange, err: unknown): void {
    this.#detach(ex);
    ex.reader?.cancel(err).catch(() => {});
    if (!ex.settled) {
      ex.settled = true;
      ex.reject(err);
    } else if (ex.controller) {
      ex.controller.error(err);
      ex.controller = null;
    }
    this.destroy();
  }

  /** The peer closed (or the socket failed). */
  onClose(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    const ex = this.#ex;
    this.owner.forget(this);
    const d = this.#drained;
    this.#drained = null;
    d?.();
    if (!ex) return;
    if (this.parser.closeDelimited) {
      this.parser.finish(); // ends the body: onEnd -> #finish
      return;
    }
    if (!ex.received && ex.replayable) {
      this.#detach(ex);
      ex.settled = true;
      ex.reject(new StaleConnection(`${this.owner.address} closed a kept-alive connection`));
      return;
    }
    const what = ex.received ? "in the middle of the response" : "before answering";
    this.#fail(ex, new MeshError("upstream_reset", `${this.owner.address} closed the connection ${what}${err ? `: ${err.message}` : ""}`, { cause: err }));
  }

  destroy(): void {
    if (!this.closed) {
      this.closed = true;
      this.owner.forget(this);
      this.socket?.terminate();
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}

/** One handler object for every upstream socket; the Connection rides in `socket.data`. */
export const socketHandlers: SocketHandler<Connection> = {
  data(s, chunk) {
    s.data.onData(chunk);
  },
  drain(s) {
    s.data.onDrain();
  },
  end(s) {
    // The peer half-closed: for this client that is the end of the connection.
    s.data.onClose();
    s.end();
  },
  close(s, err) {
    s.data.onClose(err);
  },
  timeout(s) {
    // Only idle connections have a timer (the pool sets it on release).
    if (!s.data.busy) s.data.destroy();
  },
  error(s, err) {
    s.data.onClose(err);
  },
};
