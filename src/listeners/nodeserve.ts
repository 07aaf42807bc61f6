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
import { countBodyBytes } from "../upstream/gcPacing.ts";
import { peerAddress, type Bound, type ConnectHandler, type RequestHandler, type ServeOptions } from "./serve.ts";
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
        countBodyBytes((value as Uint8Array).byteLength);
        c.enqueue(value as Uint8Array);
      },
      async cancel() {
        // The upstream stopped reading (it may have answered early, say 401 or 413): drain and
        // drop the rest of the upload, as node's own server does, so the answer still reaches
        // the client. Destroying the request made Bun 1.4.5's node:http flush a bare
        // "200 OK, Connection: close" (bench/destroy-early-200.ts).
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
  // A GET/HEAD body is dropped, as Bun.serve does: Bun's fetch refuses to send one (the
  // unread bytes close the connection after the answer, see onRequest).
  const hasBody =
    withBody &&
    req.method !== "GET" &&
    req.method !== "HEAD" &&
    (req.headers["content-length"] ? req.headers["content-length"] !== "0" : !!req.headers["transfer-encoding"]);
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

/** Bodies of known length up to this are read whole and written in one call. */
const SMALL_BODY = 64 * 1024;

/** How long an unread upload is drained after the answer before the connection is closed. */
const LINGER_MS = 1000;

async function writeResponse(res: ServerResponse, r: Response): Promise<void> {
  if (!r.body) {
    res.writeHead(r.status, r.statusText || undefined, nodeHeaders(r.headers));
    return void res.end();
  }
  const length = Number(r.headers.get("content-length") ?? -1);
  if (length >= 0 && length <= SMALL_BODY) {
    // The common small response: one write, no per-chunk wait for the socket. The body is read
    // before the head goes out, so an upstream that breaks off still gets a proper 502.
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await r.arrayBuffer());
    } catch {
      return writeResponse(res, errorResponse(new MeshError("upstream_reset", "the upstream closed the connection before the whole response")));
    }
    res.writeHead(r.status, r.statusText || undefined, nodeHeaders(r.headers));
    return void res.end(bytes);
  }
  res.writeHead(r.status, r.statusText || undefined, nodeHeaders(r.headers));
  // Out now: if the upstream breaks before the first chunk, destroy() must cut a response the
  // client has begun, not let Bun's node:http send a bare "200 OK" that ends cleanly.
  res.flushHeaders();
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
      countBodyBytes(value.byteLength);
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
async function tunnel(req: IncomingMessage, socket: Socket, head: Buffer, connect: ConnectHandler, peer: string): Promise<void> {
  socket.on("error", () => socket.destroy());
  const decided = await connect(req.url ?? "", peer);
  if (decided instanceof Response) return writeRaw(socket, decided);
  const address = typeof decided === "string" ? decided : decided.address;
  const settle = typeof decided === "string" ? undefined : decided.settle;
  let upstream: Socket;
  try {
    upstream = await dial(address);
  } catch (err) {
    const error = new MeshError("upstream_connect_failure", `cannot reach ${address}: ${(err as Error).message}`);
    const r = errorResponse(error);
    settle?.(r, error);
    return writeRaw(socket, r);
  }
  if (socket.destroyed) {
    const error = new MeshError("upstream_reset", "the client closed the connection before the tunnel opened");
    settle?.(errorResponse(error), error);
    return void upstream.destroy();
  }
  settle?.(new Response(null, { status: 200 }));
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
      let request: Request | Response;
      try {
        request = toRequest(req, aborter.signal, true);
      } catch (err) {
        // A Host (or target) no URL can be made of is the client's error, not the listener's.
        request = errorResponse(new MeshError("bad_request", `invalid Host or request target: ${(err as Error).message}`));
      }
      if (request instanceof Response) r = request;
      else {
        try {
          r = await handler(request, peerAddress(options, req.socket.remoteAddress, req.socket.remotePort));
        } catch (err) {
          r = errorResponse(new MeshError("internal", `listener failed: ${(err as Error).message}`));
        }
      }
    }
    await writeResponse(res, r);
    // An upload the upstream never read (it answered early): pullStream's cancel discards the
    // rest. Once the answer is out, linger a moment before closing (as nginx's lingering close):
    // closing with unread bytes sends a reset that can destroy the answer before the client
    // reads it.
    if (!req.complete) {
      const linger = () => {
        const timer = setTimeout(() => req.destroy(), LINGER_MS);
        const done = () => clearTimeout(timer);
        req.once("end", done);
        req.socket.once("close", done);
      };
      if (res.writableFinished) linger();
      else res.once("finish", linger);
    }
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
    void tunnel(req, socket, head, connect, peerAddress(options, socket.remoteAddress, socket.remotePort)).catch(() => socket.destroy());
  });
  server.on("upgrade", async (req: IncomingMessage, socket: Socket, head: Buffer) => {
    track(socket);
    socket.on("error", () => socket.destroy());
    const session: UpgradeSession = { upgrade: undefined!, done: false };
    session.upgrade = rawUpgrader(req, socket, head, session);
    const request = toRequest(req, undefined, false);
    registerUpgrade(request, session);
    try {
      const r = await handler(request, peerAddress(options, socket.remoteAddress, socket.remotePort));
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
