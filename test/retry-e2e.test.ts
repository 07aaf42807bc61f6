/**
 * Retry semantics through a real sidecar and real apps: the overall timeout bounds every
 * retry, a POST is replayed byte for byte when nonIdempotent allows it, and a body over
 * maxBodyBytes goes upstream once, whole, and is not retried.
 */
import { afterAll, expect, test } from "bun:test";
import { startApp, startSidecar, viaProxy } from "./helpers.ts";

let tries = 0;
const bodies: string[] = [];
const app = startApp(async (req) => {
  tries++;
  if (new URL(req.url).pathname === "/hang") return new Promise<Response>(() => {}); // never answers
  bodies.push(await req.text());
  return tries % 2 === 1 ? new Response("busy", { status: 503 }) : new Response(`ok ${bodies.at(-1)!.length}`);
});
const a = startSidecar({
  service: { name: "shop" },
  services: {
    slow: { endpoints: [`127.0.0.1:${app.port}`], timeout: 600, retry: { attempts: 20, perTryTimeout: 100, on: ["5xx"], backoff: { base: 1, max: 1 } } },
    orders: { endpoints: [`127.0.0.1:${app.port}`], retry: { attempts: 2, nonIdempotent: true, on: ["5xx"], maxBodyBytes: 1000, backoff: { base: 1, max: 1 } } },
  },
});
const proxy = `http://${a.addresses.consumer}`;
afterAll(async () => {
  await a.stop();
  app.stop(true);
});

test("the overall timeout covers every retry: per-try timeouts are retried until it runs out, then 504", async () => {
  tries = 0;
  const t0 = performance.now();
  const r = await viaProxy(proxy, "http://slow/hang");
  const elapsed = performance.now() - t0;
  expect(r.status).toBe(504);
  expect(r.headers.get("x-mesher-error")).toBe("upstream_timeout");
  expect((await r.json()).error.code).toBe("upstream_timeout");
  expect(tries).toBeGreaterThanOrEqual(2); // the per-try timeout was retried
  // 20 retries of 100 ms would take over 2 s: the 600 ms overall timeout cut them short.
  expect(elapsed).toBeLessThan(1900);
});

test("a POST is retried with nonIdempotent and its body replayed byte for byte", async () => {
  tries = 0;
  bodies.length = 0;
  const body = "order=" + "x".repeat(494);
  const r = await viaProxy(proxy, "http://orders/buy", { method: "POST", body });
  expect(r.status).toBe(200);
  expect(await r.text()).toBe("ok 500");
  expect(bodies).toEqual([body, body]);
});

test("a body over maxBodyBytes, streamed, goes upstream once and whole, and is not retried", async () => {
  tries = 0;
  bodies.length = 0;
  const chunk = "y".repeat(400);
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < 5; i++) c.enqueue(new TextEncoder().encode(chunk));
      c.close();
    },
  });
  const r = await viaProxy(proxy, "http://orders/upload", { method: "POST", body: stream, duplex: "half" } as RequestInit);
  expect(r.status).toBe(503);
  await r.text();
  expect(bodies).toEqual([chunk.repeat(5)]);
});
