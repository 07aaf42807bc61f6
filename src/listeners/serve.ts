/**
 * The runtime glue of the HTTP listeners: everything else works on web-standard
 * Request/Response. Two engines serve the same handler shape:
 * - Bun.serve (the faster) for provider, admin and edge, and for the consumer when CONNECT
 *   is switched off;
 * - node:http (nodeserve.ts) for the consumer, because Bun.serve can neither take over a socket
 *   for CONNECT nor tell absolute-form from origin-form (see docs/listeners.md for figures).
 * On the consumer and provider ports the fast path (fastpath.ts) may sit in front of either,
 * which then listens on a private loopback port.
 * A listener with TLS restarts on the same port when its certificate files change (Bun.serve's
 * reload() ignores new TLS options on Bun 1.4.5, and node:https has no setSecureContext).
 */
import type { Server } from "bun";
import { errorResponse, MeshError } from "../pipeline/errors.ts";
import { onServerTlsChange } from "../tls/reload.ts";
import { serverTlsOptions } from "../tls/options.ts";
import type { ServerTls } from "../tls/schema.ts";
import { splitAddress } from "../upstream/cluster.ts";
import { serveNode } from "./nodeserve.ts";
import { registerUpgrade, wantsWebSocket, type UpgradeSession } from "./upgrade.ts";
import { bunUpgrader, relayHandler, type RelayData } from "./wsrelay.ts";

export type RequestHandler = (req: Request, clientAddress: string) => Promise<Response> | Response;

/**
 * A CONNECT the handler allows: where to dial, and `settle`, told how the tunnel opened (the
 * 200 sent, or the error answered) so the tunnel is counted and logged like a request.
 */
export interface TunnelDecision {
  address: string;
  settle(res: Response, error?: MeshError): void;
}

/**
 * Decides what a CONNECT may reach: the "host:port" to dial (or a TunnelDecision), or a
 * Response refusing it.
 */
export type ConnectHandler = (
  authority: string,
  clientAddress: string,
) => Promise<string | TunnelDecision | Response> | string | TunnelDecision | Response;

export interface ServeOptions {
  /** Milliseconds; Bun takes whole seconds up to 255, 0 disables. */
  idleTimeout: number;
  maxRequestBodySize: number;
  /** Serve TLS from these files (reloaded when they change). */
  tls?: ServerTls;
  /** Serve CONNECT too (uses the node:http engine). */
  connect?: ConnectHandler;
  /**
   * The client's address from the one the engine sees (the fast path pipes connections to
   * the regular engine over loopback and maps each pipe's port back to its client).
   */
  peerOf?: (address: string, port: number) => string;
}

/** The client address a handler is given. */
export function peerAddress(options: ServeOptions, address: string | undefined, port: number | undefined): string {
  if (!address) return "";
  return options.peerOf && port !== undefined ? options.peerOf(address, port) : address;
}

/** A bound listener, whichever engine serves it. */
export interface Listener {
  readonly hostname: string;
  readonly port: number;
  /** Requests in progress (node:http engine: open connections, tunnels included). */
  readonly pendingRequests: number;
  /** WebSockets open (relayed by Bun.serve; the node:http engine counts them as connections). */
  readonly pendingWebSockets: number;
  /** Stops accepting; `closeActive` also cuts open connections. Resolves when closed. */
  stop(closeActive?: boolean): Promise<void>;
}

/** One server instance of an engine, bound to a port. */
export interface Bound {
  readonly port: number;
  readonly pendingRequests: number;
  readonly pendingWebSockets: number;
  stop(closeActive: boolean): Promise<void>;
}

export function serveHttp(address: string, handler: RequestHandler, options: ServeOptions, fast?: FastPath): Listener {
  const { host, port } = splitAddress(address);
  const engine = (h: string, p: number, o: ServeOptions): Bound =>
    o.connect ? serveNode(h, p, handler, o, o.connect) : serveBun(h, p, handler, o);
  if (fast && !options.tls) {
    // The fast path in front; the regular engine on a private loopback port behind it.
    const start = (p: number): Bound => {
      const peers = new Map<number, string>();
      const peerOf = (a: string, port: number) => peers.get(port) ?? a;
      const regular = engine("127.0.0.1", 0, { ...options, peerOf });
      return fast.start(host, p, regular, peers);
    };
    return reloading(host, port, undefined, start);
  }
  return reloading(host, port, options.tls, (p) => engine(host, p, options));
}

/** Starts the fast path (fastpath.ts) in front of a regular engine. */
export interface FastPath {
  start(host: string, port: number, regular: Bound, peers: Map<number, string>): Bound;
}

/** Bun.serve with the WebSocket relay; the faster of the two regular engines. */
function serveBun(host: string, port: number, handler: RequestHandler, options: ServeOptions): Bound {
  const tls = options.tls ? serverTlsOptions(options.tls) : undefined;
  const server = Bun.serve<RelayData>({
    hostname: host,
    port,
    idleTimeout: Math.min(255, Math.ceil(options.idleTimeout / 1000)),
    maxRequestBodySize: options.maxRequestBodySize,
    ...(tls ? { tls } : {}),
    websocket: { ...relayHandler, maxPayloadLength: Math.min(options.maxRequestBodySize, 2 ** 30) },
    async fetch(req, server) {
      let session: UpgradeSession | undefined;
      if (wantsWebSocket(req.headers)) {
        session = { upgrade: undefined!, done: false };
        session.upgrade = bunUpgrader(req, server, session);
        registerUpgrade(req, session);
      }
      const ip = server.requestIP(req);
      const res = await handler(req, peerAddress(options, ip?.address, ip?.port));
      if (session?.done) return undefined as unknown as Response; // the socket is a WebSocket now
      // A response of unknown length may be a stream (server-sent events) that goes quiet for a
      // while: Bun's idle timer would cut it (it cut an SSE stream silent for 12 s at the 10 s
      // default), so streams are exempt.
      if (res.body && !res.headers.has("content-length")) server.timeout(req, 0);
      return res;
    },
    error(err) {
      return errorResponse(new MeshError("internal", `listener failed: ${err.message}`));
    },
  });
  return {
    port: server.port!,
    get pendingRequests() {
      return server.pendingRequests;
    },
    get pendingWebSockets() {
      return server.pendingWebSockets;
    },
    stop: (closeActive) => server.stop(closeActive),
  };
}

/**
 * Keeps a listener on one address across certificate changes: on a change the listening
 * socket closes (its connections finish on the old instance) and a new instance binds the
 * same port with the new certificate at once.
 */
function reloading(hostname: string, port: number, tls: ServerTls | undefined, start: (port: number) => Bound): Listener {
  let current = start(port);
  const bound = current.port;
  const draining = new Set<Promise<void>>();
  // The options are read from the files again by start(); onServerTlsChange only calls this
  // once they make a usable pair (the old certificate keeps serving until the files agree).
  const unsubscribe = tls
    ? onServerTlsChange(tls, `${hostname}:${bound}`, () => {
        const old = current;
        const done = old.stop(false);
        try {
          current = start(bound);
        } catch (err) {
          console.error(`mesher: could not reload the certificate of ${hostname}:${bound}: ${(err as Error).message}`);
          return;
        }
        draining.add(done);
        void done.finally(() => draining.delete(done));
      })
    : undefined;
  return {
    hostname,
    port: bound,
    get pendingRequests() {
      return current.pendingRequests;
    },
    get pendingWebSockets() {
      return current.pendingWebSockets;
    },
    async stop(closeActive = false) {
      unsubscribe?.();
      await Promise.all([current.stop(closeActive), ...draining]);
    },
  };
}

/** "host:port" a listener is bound to. */
export function boundAddress(server: { hostname?: string | undefined; port?: number | undefined }): string {
  const host = server.hostname ?? "127.0.0.1";
  return `${host.includes(":") ? `[${host}]` : host}:${server.port}`;
}

export type { Server };
