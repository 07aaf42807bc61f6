/**
 * mesher's upstream HTTP/1.1 client: a keep-alive pool per endpoint over `Bun.connect`, used by
 * the transport in place of `fetch` (which cost most of a proxy's CPU here: bench/NOTES.md).
 * Plain-text HTTP/1.1 only; the transport keeps `fetch` for what this does not do (TLS).
 */
import { MeshError } from "../../pipeline/errors.ts";
import { Connection, socketHandlers, StaleConnection, type ConnectionOwner } from "./connection.ts";

/** Idle connections kept per endpoint (Bun's fetch keeps 64 per pool; a sidecar can use more). */
export const MAX_IDLE_PER_ENDPOINT = 256;

/** An idle connection is closed after this long (seconds; Bun.serve closes idle ones at 10 s). */
export const IDLE_TIMEOUT_SECONDS = 15;

/** Methods a request may be replayed with (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

export class Pool implements ConnectionOwner {
  readonly idle: Connection[] = [];
  /** Connections opened so far (tests and the bench read it to see reuse). */
  opened = 0;
  /** Seconds an idle connection is kept. */
  idleTimeout = IDLE_TIMEOUT_SECONDS;

  constructor(
    readonly address: string,
    readonly hostname: string,
    readonly port: number,
  ) {}

  release(conn: Connection): void {
    if (this.idle.length < MAX_IDLE_PER_ENDPOINT) {
      this.idle.push(conn);
      conn.socket!.timeout(this.idleTimeout); // Bun closes it then (close -> forget)
    } else conn.destroy();
  }

  forget(conn: Connection): void {
    const i = this.idle.lastIndexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
  }

  /** An idle connection (most recently used first: the likeliest to be alive). */
  acquire(): Connection | undefined {
    let c: Connection | undefined;
    while ((c = this.idle.pop())) {
      if (c.closed) continue;
      c.socket!.timeout(0); // busy connections have no idle timer: streams may be quiet
      return c;
    }
    return undefined;
  }

  async connect(signal: AbortSignal): Promise<Connection> {
    const conn = new Connection(this);
    this.opened++;
    try {
      conn.socket = await Bun.connect<Connection>({ hostname: this.hostname, port: this.port, data: conn, socket: socketHandlers });
    } catch (err) {
      conn.closed = true;
      if (signal.aborted) throw abortError(signal);
      throw new MeshError("upstream_connect_failure", `could not connect to ${this.address}: ${(err as { code?: string }).code ?? (err as Error).message}`, { cause: err });
    }
    if (signal.aborted) {
      conn.destroy();
      throw abortError(signal);
    }
    return conn;
  }
}

const pools = new Map<string, Pool>();

/** The process-wide pool of one endpoint ("host:port"); created on first use. */
export function poolFor(address: string, hostname: string, port: number): Pool {
  let p = pools.get(address);
  if (!p) pools.set(address, (p = new Pool(address, hostname, port)));
  return p;
}

export function abortError(signal: AbortSignal): MeshError {
  const r = signal.reason;
  return r instanceof MeshError ? r : new MeshError("upstream_reset", "the downstream client went away", { cause: r });
}

export interface H1Request {
  method: string;
  /** Origin-form path and query. */
  path: string;
  /** Sent as they are (Host included): hop-by-hop ones already removed by the caller. */
  headers: Headers;
  body: ReadableStream<Uint8Array> | Uint8Array | null;
  signal: AbortSignal;
}

/**
 * Sends one request on a pooled connection; resolves at response headers. A kept-alive
 * connection that the endpoint had closed (nothing received) is retried once on a fresh
 * connection when the request is idempotent and its body can be sent again.
 */
export async function h1Request(pool: Pool, req: H1Request): Promise<Response> {
  const { method, body, signal } = req;
  if (signal.aborted) throw abortError(signal);
  let head = `${method} ${req.path} HTTP/1.1\r\n`;
  let chunked = false;
  let hasLength = false;
  // forEach: about a third cheaper than for..of over Headers in Bun 1.4 (no entry arrays).
  req.headers.forEach((value, name) => {
    if (name === "content-length") {
      hasLength = true;
      if (body instanceof Uint8Array) return; // written below from the bytes themselves
      // No body to send (Bun gives a GET that carried one a null body): a length would make
      // the endpoint wait for bytes that never come, or read the next request as them.
      if (!body) return;
    }
    head += `${name}: ${value}\r\n`;
  });
  if (body instanceof Uint8Array) head += `content-length: ${body.byteLength}\r\n`;
  else if (body && !hasLength) {
    head += "transfer-encoding: chunked\r\n";
    chunked = true;
  }
  head += "\r\n";
  // latin1: header values are byte strings; socket.write(string) would send UTF-8.
  const headBytes = Buffer.from(head, "latin1");
  const idempotent = IDEMPOTENT.has(method);
  const noBody = method === "HEAD";

  let conn = pool.acquire() ?? (await pool.connect(signal));
  try {
    return await conn.send(headBytes, body, chunked, noBody, signal, idempotent);
  } catch (err) {
    if (!(err instanceof StaleConnection)) throw err;
  }
  conn = await pool.connect(signal);
  return conn.send(headBytes, body, chunked, noBody, signal, idempotent);
}
