/**
 * Protocol upgrades (WebSocket) through the chain. The listener glue registers an Upgrader for
 * a request that asks to switch protocols; `newContext` puts it on `ctx.upgrade`; the
 * transport calls it with the endpoint the chain chose, in place of an HTTP exchange. So
 * routing, balancing and every policy before the transport apply to upgrades as to requests,
 * on every listener (consumer, provider, edge).
 */
import type { Endpoint } from "../upstream/cluster.ts";
import type { Ctx } from "../pipeline/types.ts";
import type { ClientTlsOptions } from "../tls/options.ts";

/** Opens the upstream side of an upgrade and joins it to the downstream connection. */
export type Upgrader = (ctx: Ctx, endpoint: Endpoint, tls?: ClientTlsOptions) => Promise<Response>;

export interface UpgradeSession {
  upgrade: Upgrader;
  /** Set once the downstream connection has been handed over; the listener then writes nothing. */
  done: boolean;
}

const sessions = new WeakMap<Request, UpgradeSession>();

export function registerUpgrade(req: Request, session: UpgradeSession): void {
  sessions.set(req, session);
}

export function upgraderOf(req: Request): Upgrader | undefined {
  return sessions.get(req)?.upgrade;
}

/** True when the request asks for a WebSocket (RFC 6455 §4.1). */
export function wantsWebSocket(headers: { get(name: string): string | null }): boolean {
  return headers.get("upgrade")?.toLowerCase() === "websocket";
}

/**
 * What the chain answers once the connection is handed over. Never written to the wire; it
 * lets the chain (metrics, access log, spans) see a normal end: 101 Switching Protocols, as
 * the client got and as Envoy logs an upgrade.
 */
export function upgradedResponse(): Response {
  return new Response(null, { status: 101, headers: { "x-mesher-upgraded": "websocket" } });
}

/** Handshake headers that belong to one hop and are rebuilt by each WebSocket client. */
export const WS_HOP_HEADERS = [
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "sec-websocket-accept",
  "upgrade",
  "connection",
  "host",
  "content-length",
];
