import { afterAll, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { curl, twoSidecars } from "./helpers.ts";

/** A WebSocket echo app: picks "chat" when offered, closes with 4001 on "close-me", records closes. */
function startWsApp() {
  const closes: { code: number; reason: string }[] = [];
  const app: Server<string> = Bun.serve<string>({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req, server) {
      const offered = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((s) => s.trim());
      const headers = offered.includes("chat") ? { "sec-websocket-protocol": "chat" } : undefined;
      if (server.upgrade(req, { headers, data: new URL(req.url).pathname })) return undefined;
      return new Response(`plain ${new URL(req.url).pathname}`);
    },
    websocket: {
      maxPayloadLength: 64 << 20,
      message(ws, m) {
        if (m === "close-me") ws.close(4001, "bye");
        else if (m === "path?") ws.send(ws.data); // the path the app saw
        else ws.send(m);
      },
      close(_ws, code, reason) {
        closes.push({ code, reason });
      },
    },
  });
  return { app, closes };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (cond()) return;
    await Bun.sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Opens a WebSocket to a sidecar's consumer port naming the service in Host, as a proxied app would. */
async function open(consumer: string, protocols?: string[]): Promise<WebSocket> {
  const ws = new WebSocket(`ws://${consumer}/echo`, { headers: { host: "promotion" }, protocols } as unknown as string[]);
  ws.binaryType = "arraybuffer";
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("WebSocket failed to open"));
  });
  return ws;
}

function next(ws: WebSocket): Promise<string | ArrayBuffer> {
  return new Promise((resolve) => (ws.onmessage = (e) => resolve(e.data)));
}

for (const connect of [true, false]) {
  const engine = connect ? "node:http consumer (CONNECT on)" : "Bun.serve consumer (CONNECT off)";
  describe(`WebSocket through two sidecars, ${engine}`, () => {
    const { app, closes } = startWsApp();
    const mesh = twoSidecars(app.port!, { a: { listen: { connect }, drainTimeout: "1s" }, b: { drainTimeout: "1s" } });
    afterAll(async () => {
      await mesh.stop();
      app.stop(true);
    });

    test("subprotocol, text and a 10 MB binary frame pass both ways", async () => {
      const ws = await open(mesh.a.addresses.consumer, ["chat", "other"]);
      expect(ws.protocol).toBe("chat");
      ws.send("hello");
      expect(await next(ws)).toBe("hello");
      const big = new Uint8Array(10 << 20);
      for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
      big[big.length - 1] = 42;
      ws.send(big);
      const back = new Uint8Array((await next(ws)) as ArrayBuffer);
      expect(back.byteLength).toBe(big.byteLength);
      expect(back[big.length - 1]).toBe(42);
      expect(Buffer.compare(back, big)).toBe(0);
      ws.close();
    });

    test("the app's close code and reason reach the client", async () => {
      const ws = await open(mesh.a.addresses.consumer);
      const closed = new Promise<CloseEvent>((r) => (ws.onclose = r));
      ws.send("close-me");
      const e = await closed;
      expect(e.code).toBe(4001);
      expect(e.reason).toBe("bye");
    });

    test("the client's close code and reason reach the app", async () => {
      const ws = await open(mesh.a.addresses.consumer);
      ws.send("path?");
      expect(await next(ws)).toBe("/echo");
      ws.close(4002, "client done");
      await until(() => closes.some((c) => c.code === 4002), "the app to see code 4002");
      expect(closes.find((c) => c.code === 4002)!.reason).toBe("client done");
    });

    test("an upgrade to a host that is neither a service nor allowed gets the JSON error", async () => {
      const r = await curl([
        "-x", mesh.proxy, "-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13",
        "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "http://nosuch/echo",
      ]);
      expect(r.status).toBe(403);
      expect(JSON.parse(r.body).error.code).toBe("forbidden");
    });
  });
}

describe("WebSocket through the edge gateway (TLS edge listener) and the service's sidecar", () => {
  test("an external wss:// client reaches the app by an ingress rule, with path rewrite", async () => {
    const { makeCert } = await import("./certs.ts");
    const { startSidecar } = await import("./helpers.ts");
    const certs = await makeCert(["localhost"]);
    const { app } = startWsApp();
    const sidecar = startSidecar({ service: { name: "chat", ports: { http: app.port! } }, listen: { provider: "127.0.0.1:0" }, drainTimeout: "1s" });
    const gw = startSidecar({
      mode: "edge",
      service: { name: "gateway" },
      listen: { edge: "127.0.0.1:0", consumer: false, tls: { edge: { cert: certs.cert, key: certs.key } } },
      services: { chat: { endpoints: [sidecar.addresses.provider!] } },
      ingress: [{ path: { prefix: "/ws/" }, rewrite: { prefix: "/" }, service: "chat" }],
      drainTimeout: "1s",
    });
    try {
      const port = gw.addresses.edge!.split(":")[1];
      const { readFileSync } = await import("node:fs");
      const ws = new WebSocket(`wss://localhost:${port}/ws/echo`, {
        protocols: ["chat"],
        tls: { ca: readFileSync(certs.cert, "utf8") },
      } as unknown as string[]);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error("open failed"));
      });
      expect(ws.protocol).toBe("chat");
      ws.send("path?");
      expect(await next(ws)).toBe("/echo"); // /ws/echo rewritten by the ingress rule
      const closed = new Promise<CloseEvent>((r) => (ws.onclose = r));
      ws.send("close-me");
      expect((await closed).code).toBe(4001);
    } finally {
      await Promise.all([gw.stop(), sidecar.stop()]);
      app.stop(true);
    }
  });
});
