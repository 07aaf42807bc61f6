/**
 * WebSocket relay for Bun.serve listeners: Bun.serve cannot hand over a raw socket, so the
 * listener accepts the WebSocket itself (`server.upgrade`) and relays messages to a WebSocket
 * it opens upstream. Subprotocol, message type, and close code/reason pass both ways.
 */
import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import { MeshError } from "../pipeline/errors.ts";
import type { Ctx } from "../pipeline/types.ts";
import type { ClientTlsOptions } from "../tls/options.ts";
import type { Endpoint } from "../upstream/cluster.ts";
import { upgradedResponse, WS_HOP_HEADERS, type UpgradeSession } from "./upgrade.ts";

export interface RelayData {
  upstream: WebSocket;
  /** Messages from upstream that arrived before the downstream socket opened. */
  early: (string | ArrayBuffer)[];
  open: boolean;
}

type Message = string | ArrayBuffer;

/** Close codes a peer may send (1005/1006/1015 are reserved for "none"/"abnormal"/"TLS"). */
function sendableCode(code: number): number | undefined {
  return code === 1000 || (code >= 1001 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999)
    ? code
    : undefined;
}

function closeWith(target: { close(code?: number, reason?: string): void }, code: number, reason: string): void {
  const c = sendableCode(code);
  try {
    if (c === undefined) target.close();
    else target.close(c, reason);
  } catch {
    target.close();
  }
}

/** The `websocket` handler object Bun.serve needs, shared by every relayed connection. */
export const relayHandler: WebSocketHandler<RelayData> = {
  open(ws) {
    ws.data.open = true;
    for (const m of ws.data.early) ws.send(m);
    ws.data.early.length = 0;
    const up = ws.data.upstream;
    up.onmessage = (e: MessageEvent<Message>) => ws.send(e.data);
    up.onclose = (e: CloseEvent) => closeWith(ws, e.code, e.reason);
    up.onerror = () => ws.close(1011, "upstream error");
  },
  message(ws, message) {
    const up = ws.data.upstream;
    if (up.readyState === WebSocket.OPEN) up.send(message);
  },
  close(ws, code, reason) {
    closeWith(ws.data.upstream, code, reason);
  },
  perMessageDeflate: false,
};

/** An Upgrader for a request that arrived on a Bun.serve listener. */
export function bunUpgrader(req: Request, server: Server<RelayData>, session: UpgradeSession) {
  return async function upgrade(ctx: Ctx, endpoint: Endpoint, tls?: ClientTlsOptions): Promise<Response> {
    const headers: Record<string, string> = {};
    ctx.headers.forEach((value, name) => {
      if (!WS_HOP_HEADERS.includes(name) && name !== "sec-websocket-protocol") headers[name] = value;
    });
    const protocols = (req.headers.get("sec-websocket-protocol") ?? "")
      .split(",")
      .map((p) => p.trim())
      .filter(Boolean);
    const url = `${tls ? "wss" : "ws"}://${endpoint.address}${ctx.path}`;
    // Bun's WebSocket client takes headers and tls as a second-argument object.
    const upstream = new WebSocket(url, { headers, protocols, tls } as unknown as string[]);
    upstream.binaryType = "arraybuffer";
    const early: Message[] = [];
    await new Promise<void>((resolve, reject) => {
      upstream.onopen = () => resolve();
      upstream.onerror = () => reject(new MeshError("upstream_connect_failure", `WebSocket handshake with ${endpoint.address} failed`));
      upstream.onclose = (e) => reject(new MeshError("upstream_reset", `WebSocket to ${endpoint.address} closed during handshake (${e.code})`));
      upstream.onmessage = (e: MessageEvent<Message>) => early.push(e.data);
    });
    upstream.onclose = null;
    upstream.onerror = null;
    const data: RelayData = { upstream, early, open: false };
    // Until the downstream socket opens, keep what upstream sends (relayHandler.open flushes it).
    upstream.onmessage = (e: MessageEvent<Message>) => early.push(e.data);
    const extra: Record<string, string> = upstream.protocol ? { "sec-websocket-protocol": upstream.protocol } : {};
    if (!server.upgrade(req, { data, headers: extra })) {
      upstream.close();
      throw new MeshError("bad_request", "the WebSocket upgrade could not be completed");
    }
    session.done = true;
    return upgradedResponse();
  };
}

export type { ServerWebSocket };
