/**
 * The node:http engine, for the consumer port: it serves plain HTTP proxying (absolute-form
 * URLs as sent), CONNECT tunnels (the app's HTTPS_PROXY) and WebSocket upgrades (raw bytes
 * piped once the chain has chosen an endpoint) on one port. About two thirds of Bun.serve's
 * throughput here (docs/listeners.md), so only the consumer uses it, and only while CONNECT is on.
 */
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import net, { type Socket } from "node:net";
import tls from "node:tls";
import { errorResponse, MeshError } from "../pipeline/errors.ts";
import type { Ctx } from "../pipeline/types.ts";
import type { ClientTlsOptions } from "../tls/options.ts";
import { serverTlsOptions } from "../tls/options.ts";
import type { Endpoint } from "../upstream/cluster.ts";
import { splitAddress } from "../upstream/cluster.ts";
import type { Bound, ConnectHandler, RequestHandler, ServeOptions } from "./serve.ts";
import { registerUpgrade, upgradedResponse, WS_HOP_HEADERS, type UpgradeSession } from "./upgrade.ts";

/**
 * A request body as a web stream that reads from the request only when the upstream pulls.
 * (Readable.toWeb on Bun 1.4.5 peaked 10 MB higher for a 100 MB upload.)
 *
 * When the upstream stops taking the body (it answered first, a timeout fired, the client went
 * away), the rest is read and dropped, as node's server does for an unread body, so the answer
 * still goes out and the connection stays usable. NOT req.destroy(): on Bun 1.4.5, destroying a
 * request whose body has not ended, after the 'request' event's tick, makes Bun write
 * "HTTP/1.1 200 OK" + "Connection: close" with no body, and the real answer is lost
 * (docs/listeners.md; bench/destroy-early-200.ts shows it alone).
 */
function pullStream(req: IncomingMessage): ReadableStream<Uint8Array> {
  const it = req[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        const { value, done } = await it.next();
        if (done) return c.close();
        counted((value as Uint8Array).byteLength);
        c.enqueue(value as Uint8Array);
      },
      async cancel() {
        try {
          // The same iterator (not resume()): its 'readable' listener would keep the stream paused.
          while (!(await it.next()).done);
        } catch {
          // The client went away: nothing left to drop.
        }
      },
    },
    { highWaterMark: 0 },
  );
}

/** Builds the Request the handlers see from a node request. */
function toRequest(req: IncomingMessage, signal: AbortSignal | undefined, withBody: boolean): Request {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  let url = req.url ?? "/";
  if (url.startsWith("http://") || url.startsWith("https://")) {
    // Absolute-form (a proxy request): its authority names the destination, whatever Host says
    // (RFC 9112 §3.2.2).
    const start = url.indexOf("//") + 2;
    const end = url.indexOf("/", start);
    headers.set("host", url.slice(start, end < 0 ? undefined : end));
    if (end < 0) url += "/";
  } else {
    url = `http://${headers.get("host") ?? "localhost"}${url}`;
  }
  const hasBody = withBody && (req.headers["content-length"] ? req.headers["content-length"] !== "0" : !!req.headers["transfer-encoding"]);
  return new Request(url, {
    method: req.method,
    headers,
    body: hasBody ? pullStream(req) : null,
    signal,
    duplex: "half",
  } as RequestInit);
}

/** Headers of a Response in the shape node's writeHead takes (Set-Cookie kept apart). */
function nodeHeaders(h: Headers): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  h.forEach((value, name) => {
    if (name !== "set-cookie") out[name] = value;
  });
  const cookies = h.getSetCookie();
  if (cookies.length) out["set-cookie"] = cookies;
  return out;
}

/**
 * After this many body bytes through the node:http engine, a full garbage collection (at most
 * one per GC_INTERVAL_MS). Chunks cross JavaScript here, unlike Bun.serve's native path, and
 * the collector lags behind a fast stream: a 100 MB upload plus download raised peak RSS by
 * 28-50 MB without it, about 25 MB with it (Bun.gc(false), the asynchronous hint, made no
 * difference; one GC per 100 ms was too few). A full GC of a sidecar's heap takes 0.4-5 ms:
 * at 100 MB/s that is ~1% of a core, and nothing for small bodies.
 */
const GC_BYTES = 16 * 1024 * 1024;
const GC_INTERVAL_MS = 10;
let sinceGc = 0;
let lastGc = 0;
function counted(bytes: number): void {
  sinceGc += bytes;
  if (sinceGc < GC_BYTES) return;
  const now = performance.now();
  if (now - lastGc < GC_INTERVAL_MS) return;
  sinceGc = 0;
  lastGc = now;
  Bun.gc(true);
}

/** Bodies of known length up to this are read whole and written in one call. */
const SMALL_BODY = 64 * 1024;

async function writeResponse(res: ServerResponse, r: Response): Promise<void> {
  res.writeHead(r.status, r.statusText || undefined, nodeHeaders(r.headers));
  if (!r.body) return void res.end();
  const length = Number(r.headers.get("content-length") ?? -1);
  if (length >= 0 && length <= SMALL_BODY) {
    // The common small response: one write, no per-chunk wait for the socket.
    try {
      return void res.end(new Uint8Array(await r.arrayBuffer()));
    } catch {
      return void res.destroy();
    }
  }
  const reader = r.body.getReader();
  let closed = false;
  let wake: (() => void) | undefined;
  res.once("close", () => {
    closed = true;
    wake?.();
  });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (closed) return void reader.cancel();
      counted(value.byteLength);
      // Each chunk waits until the socket has taken it (write callback), not only when write()
      // returns false: for a 100 MB download that peaked 10-15 MB lower on Bun 1.4.5.
      await new Promise<void>((ok) => {
        wake = ok;
        res.write(value, () => ok());
      });
    }
    res.end();
  } catch {
    res.destroy(); // upstream broke mid-body: the client must see a cut, not a clean end
  }
}

/** Writes a Response onto a raw socket (CONNECT and upgrade refusals), then closes it. */
async function writeRaw(socket: Socket, r: Response): Promise<void> {
  const body = new Uint8Array(await r.arrayBuffer());
  let head = `HTTP/1.1 ${r.status} ${r.statusText || http.STATUS_CODES[r.status] || ""}\r\n`;
  r.headers.forEach((value, name) => {
    if (name !== "content-length" && name !== "connection") head += `${name}: ${value}\r\n`;
  });
  head += `content-length: ${body.byteLength}\r\nconnection: close\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(head), body]));
}

/** Joins two sockets both ways; either side closing closes the other. */
function join(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const close = () => {
    a.destroy();
    b.destroy();
  };
  a.once("error", close).once("close", close);
  b.once("error", close).once("close", close);
}

function dial(address: string, tlsOptions?: ClientTlsOptions): Promise<Socket> {
  const { host, port } = splitAddress(address);
  return new Promise((resolve, reject) => {
    const s = tlsOptions
      ? tls.connect({ host, port, ...tlsOptions, servername: tlsOptions.servername ?? (net.isIP(host) ? undefined : host) })
      : net.connect({ host, port });
    s.once(tlsOptions ? "secureConnect" : "connect", () => {
      s.removeListener("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

/** Upgrader for a node request: replays the handshake upstream, then pipes raw bytes. */
function rawUpgrader(req: IncomingMessage, socket: Socket, head: Buffer, session: UpgradeSession) {
  return async function upgrade(ctx: Ctx, endpoint: Endpoint, tlsOptions?: ClientTlsOptions): Promise<Response> {
    let upstream: Socket;
    try {
      upstream = await dial(endpoint.address, tlsOptions);
    } catch (err) {
      throw new MeshError("upstream_connect_failure", `cannot reach ${endpoint.address} for the upgrade: ${(err as Error).message}`);
    }
    let text = `${ctx.method} ${ctx.path} HTTP/1.1\r\nhost: ${endpoint.address}\r\nconnection: Upgrade\r\nupgrade: ${req.headers.upgrade}\r\n`;
    for (const name of WS_HOP_HEADERS) {
      const value = req.headers[name];
      if (value && name.startsWith("sec-websocket")) text += `${name}: ${value}\r\n`;
    }
    ctx.headers.forEach((value, name) => {
      if (!WS_HOP_HEADERS.includes(name)) text += `${name}: ${value}\r\n`;
    });
    upstream.write(`${text}\r\n`);
    if (head.length) upstream.write(head);
    session.done = true;
    join(socket, upstream);
    return upgradedResponse();
  };
}

/** Serves CONNECT: asks the handler where to, dials, answers 200 and pipes. */
async function tunnel(req: IncomingMessage, socket: Socket, head: Buffer, connect: ConnectHandler): Promise<void> {
  socket.on("error", () => socket.destroy());
  const decided = await connect(req.url ?? "", socket.remoteAddress ?? "");
  if (decided instanceof Response) return writeRaw(socket, decided);
  let upstream: Socket;
  try {
    upstream = await dial(decided);
  } catch (err) {
    return writeRaw(socket, errorResponse(new MeshError("upstream_connect_failure", `cannot reach ${decided}: ${(err as Error).message}`)));
  }
  if (socket.destroyed) return void upstream.destroy();
  socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
  if (head.length) upstream.write(head);
  join(socket, upstream);
}

export function serveNode(host: string, port: number, handler: RequestHandler, options: ServeOptions, connect: ConnectHandler): Bound {
  const onRequest = async (req: IncomingMessage, res: ServerResponse) => {
    const aborter = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) aborter.abort();
    });
    const length = Number(req.headers["content-length"] ?? 0);
    let r: Response;
    if (length > options.maxRequestBodySize) {
      r = errorResponse(new MeshError("bad_request", `request body of ${length} bytes exceeds maxRequestBodySize`, { status: 413 }));
    } else {
      try {
        r = await handler(toRequest(req, aborter.signal, true), req.socket.remoteAddress ?? "");
      } catch (err) {
        r = errorResponse(new MeshError("internal", `listener failed: ${(err as Error).message}`));
      }
    }
    await writeResponse(res, r);
  };
  const server = options.tls ? https.createServer(serverTlsOptions(options.tls), onRequest) : http.createServer(onRequest);
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  };
  server.on("connection", track);
  server.on("connect", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    track(socket);
    void tunnel(req, socket, head, connect).catch(() => socket.destroy());
  });
  server.on("upgrade", async (req: IncomingMessage, socket: Socket, head: Buffer) => {
    track(socket);
    socket.on("error", () => socket.destroy());
    const session: UpgradeSession = { upgrade: undefined!, done: false };
    session.upgrade = rawUpgrader(req, socket, head, session);
    const request = toRequest(req, undefined, false);
    registerUpgrade(request, session);
    try {
      const r = await handler(request, socket.remoteAddress ?? "");
      if (!session.done) await writeRaw(socket, r);
    } catch (err) {
      await writeRaw(socket, errorResponse(new MeshError("internal", `upgrade failed: ${(err as Error).message}`)));
    }
  });
  server.keepAliveTimeout = options.idleTimeout;
  // node's default requestTimeout (300 s for a whole request) would cut long uploads.
  server.requestTimeout = 0;
  // Without a listener an 'error' event would end the process.
  server.on("error", (err) => console.error(`mesher: listener ${host}:${port}: ${err.message}`));
  server.on("tlsClientError", () => {});
  server.listen(port, host);
  const address = server.address();
  if (!address || typeof address === "string") throw new Error(`could not bind ${host}:${port}`);
  return {
    port: address.port,
    get pendingRequests() {
      return sockets.size;
    },
    pendingWebSockets: 0,
    stop(closeActive) {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        if (closeActive) {
          server.closeAllConnections();
          for (const s of sockets) s.destroy();
        }
      });
    },
  };
}
