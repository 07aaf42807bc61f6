/**
 * The consumer port's fast path (listen.fastPath, src/listeners/fastpath.ts) against the
 * regular engine, through real sockets: what the app receives and what the client gets must be
 * the same whichever path a request takes; what the fast path does not take (bodies, upgrades,
 * unknown hosts, policies) is served by the regular engine behind it.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { resolveConfig } from "../src/config/resolve.ts";
import { fastPathUseful } from "../src/listeners/fastdirect.ts";
import { waitFor } from "./etcdServer.ts";
import { curl, rawHttpServer, run, startApp, startSidecar, twoSidecars, viaProxy } from "./helpers.ts";
import { startOtlpReceiver } from "./receivers/otlp.ts";
import { memoryRegistry } from "./memoryRegistry.ts";

let releaseSlow: () => void = () => {};
let slowStarted: () => void = () => {};
const app = startApp(async (req, server) => {
  const url = new URL(req.url);
  switch (url.pathname) {
    case "/hop":
      return new Response("hop", { headers: { connection: "x-private", "x-private": "secret", "keep-alive": "timeout=5", "x-kept": "yes" } });
    case "/stream":
      return new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode("one,"));
            setTimeout(() => {
              c.enqueue(new TextEncoder().encode("two"));
              c.close();
            }, 5);
          },
        }),
      );
    case "/delay":
      // Answers after the asked delay: a span must last at least that long.
      await Bun.sleep(Number(url.searchParams.get("ms")));
      return new Response("late");
    case "/empty":
      return new Response(null, { status: 204, headers: { "x-empty": "1" } });
    case "/big":
      return new Response(new Uint8Array(Number(url.searchParams.get("n"))).fill(66));
    case "/slow": {
      slowStarted();
      await new Promise<void>((r) => (releaseSlow = r));
      return new Response("slow done");
    }
    default: {
      const body = req.body ? new Uint8Array(await req.arrayBuffer()) : new Uint8Array();
      return Response.json({
        method: req.method,
        path: url.pathname + url.search,
        headers: Object.fromEntries(req.headers),
        bodyBytes: body.byteLength,
        sum: checksum(body),
        peer: server.requestIP(req)?.port,
      });
    }
  }
});
const endpoint = `127.0.0.1:${app.port}`;
const fast = startSidecar({ service: { name: "caller" }, listen: { fastPath: true }, services: { shop: { endpoints: [endpoint] } } });
const regular = startSidecar({ service: { name: "caller" }, listen: { fastPath: false }, services: { shop: { endpoints: [endpoint] } } });
const down = startSidecar({ service: { name: "caller" }, listen: { fastPath: true }, services: { gone: { endpoints: ["127.0.0.1:1"] } } });
afterAll(async () => {
  await Promise.all([fast.stop(), regular.stop(), down.stop()]);
  app.stop(true);
});

/** What the app saw, minus what differs by sidecar instance (its loop mark). */
async function seen(proxy: string, url: string, init: RequestInit = {}) {
  const res = await viaProxy(`http://${proxy}`, url, init);
  const body = (await res.json()) as { headers: Record<string, string> };
  body.headers["x-mesher-via"] = body.headers["x-mesher-via"]!.replace(/caller-[0-9a-f]+/, "caller-X");
  delete (body as { peer?: number }).peer; // the upstream connection's port
  return { status: res.status, body };
}

/** Raw bytes through a proxy: `requests` written at once, the answer read until `done` says so. */
function raw(address: string, requests: string, done: (text: string) => boolean): Promise<string> {
  const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
  return new Promise((resolve, reject) => {
    const s = connect({ host, port }, () => s.write(requests));
    let text = "";
    s.on("data", (d) => {
      text += d.toString("latin1");
      if (done(text)) {
        s.destroy();
        resolve(text);
      }
    });
    s.on("error", reject);
    s.on("close", () => resolve(text));
  });
}

describe("fast path", () => {
  test("the app receives the same request as through the regular engine", async () => {
    const init = { headers: { "x-forwarded-for": "10.0.0.1", "x-custom": "café-bytes", accept: "text/plain" } };
    const a = await seen(fast.addresses.consumer, "http://shop/items?q=1", init);
    const b = await seen(regular.addresses.consumer, "http://shop/items?q=1", init);
    expect(a.status).toBe(200);
    expect(a.body).toEqual(b.body);
    expect(a.body.headers["x-forwarded-for"]).toBe("10.0.0.1, 127.0.0.1");
    expect(a.body.headers["x-cse-context"]).toContain('"x-cse-src-microservice":"caller"');
    expect(a.body.headers.host).toBe(endpoint);
  });

  test("hop-by-hop response headers are dropped, the rest arrive as the app sent them", async () => {
    const r = await curl(["-s", "-i", "-x", fast.addresses.consumer, "http://shop/hop"]);
    expect(r.body).toContain("x-kept: yes");
    expect(r.body.toLowerCase()).not.toContain("x-private");
    expect(r.body.toLowerCase()).not.toContain("keep-alive: timeout");
    expect(r.body.endsWith("hop")).toBe(true);
  });

  test("a streamed response is re-chunked; 204 and HEAD carry no body", async () => {
    const s = await viaProxy(`http://${fast.addresses.consumer}`, "http://shop/stream");
    expect(await s.text()).toBe("one,two");
    const e = await viaProxy(`http://${fast.addresses.consumer}`, "http://shop/empty");
    expect(e.status).toBe(204);
    expect(e.headers.get("x-empty")).toBe("1");
    const h = await curl(["-s", "-I", "-x", fast.addresses.consumer, "http://shop/big?n=1000"]);
    expect(h.body).toMatch(/content-length: 1000/i);
  });

  test("pipelined requests on one connection are answered in order, over kept-alive upstream connections", async () => {
    const req = (p: string) => `GET http://shop/${p} HTTP/1.1\r\nHost: shop\r\n\r\n`;
    const text = await raw(fast.addresses.consumer, req("a") + req("b") + req("c"), (t) => (t.match(/HTTP\/1\.1 200/g) ?? []).length === 3 && t.includes('"/c"'));
    const paths = [...text.matchAll(/"path":"(\/\w)"/g)].map((m) => m[1]);
    expect(paths).toEqual(["/a", "/b", "/c"]);
    const peers = new Set([...text.matchAll(/"peer":(\d+)/g)].map((m) => m[1]));
    expect(peers.size).toBe(1); // one upstream connection carried all three
  });

  test("bytes that cannot become a fast request are answered by the regular engine at once", async () => {
    for (const junk of ["\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "GET / HTTP/1.1\nHost: shop\n\n"]) {
      const answer = await raw(fast.addresses.consumer, junk, (t) => /\r\n\r\n/.test(t));
      expect(answer).toMatch(/^HTTP\/1\.1 [45]\d\d/); // as Bun.serve answers them (400, 505)
    }
  });

  test("a 1 MB response arrives whole, and a client that leaves mid-response frees the connection", async () => {
    const big = await viaProxy(`http://${fast.addresses.consumer}`, "http://shop/big?n=1048576");
    const bytes = new Uint8Array(await big.arrayBuffer());
    expect(bytes.byteLength).toBe(1048576);
    expect(bytes.every((b) => b === 66)).toBe(true);
    await raw(fast.addresses.consumer, "GET http://shop/big?n=4000000 HTTP/1.1\r\nHost: shop\r\n\r\n", (t) => t.length > 1000);
    const after = await viaProxy(`http://${fast.addresses.consumer}`, "http://shop/after");
    expect(after.status).toBe(200);
  });

  test("requests the fast path does not take are served by the regular engine, with the client's address", async () => {
    // A streamed (chunked) upload goes to the regular engine.
    const body = new ReadableStream({
      start(c) {
        c.enqueue(new Uint8Array(3000).fill(1));
        c.enqueue(new Uint8Array(2000).fill(2));
        c.close();
      },
    });
    const post = await viaProxy(`http://${fast.addresses.consumer}`, "http://shop/upload", { method: "POST", body, duplex: "half" } as RequestInit);
    const p = (await post.json()) as { bodyBytes: number; headers: Record<string, string> };
    expect(p.bodyBytes).toBe(5000);
    expect(p.headers["x-forwarded-for"]).toBe("127.0.0.1");
    const unknown = await viaProxy(`http://${fast.addresses.consumer}`, "http://nowhere/");
    expect(unknown.status).toBe(403);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("forbidden");
    const self = await viaProxy(`http://${fast.addresses.consumer}`, `http://${fast.addresses.consumer}/`);
    expect(self.status).toBe(508);
  });

  test("an endpoint that refuses connections gets the regular path's JSON error", async () => {
    const r = await viaProxy(`http://${down.addresses.consumer}`, "http://gone/");
    const viaRegular = startSidecar({ service: { name: "caller" }, listen: { fastPath: false }, services: { gone: { endpoints: ["127.0.0.1:1"] } } });
    const expected = await viaProxy(`http://${viaRegular.addresses.consumer}`, "http://gone/");
    await viaRegular.stop();
    expect(r.status).toBe(502);
    expect(r.status).toBe(expected.status);
    expect(r.headers.get("x-mesher-error")).toBe("upstream_connect_failure");
    expect(r.headers.get("content-type")).toBe(expected.headers.get("content-type"));
    const body = (await r.json()) as { error: { code: string; message: string } };
    expect(body).toEqual((await expected.json()) as typeof body);
  });

  test("a kept-alive upstream connection the app closes unanswered: the request is sent again, the same head, on a fresh one", async () => {
    // A raw app: the first request of each connection is answered (kept alive), the second one
    // read and the connection closed without a byte, as a server whose idle timer just fired.
    const heads: string[] = [];
    const rawApp = rawHttpServer((s, n, head) => {
      heads.push(head);
      if (n === 1) s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${String(heads.length).length}\r\n\r\n${heads.length}`);
      else s.end();
    });
    const sidecar = startSidecar({ service: { name: "caller" }, listen: { fastPath: true }, services: { shop: { endpoints: [`127.0.0.1:${rawApp.port}`] } } });
    try {
      const first = await viaProxy(`http://${sidecar.addresses.consumer}`, "http://shop/one", { headers: { "X-Custom": "a", "user-agent": "t" } });
      expect(await first.text()).toBe("1");
      const second = await viaProxy(`http://${sidecar.addresses.consumer}`, "http://shop/two", { headers: { "X-Custom": "b", "user-agent": "t" } });
      expect(second.status).toBe(200);
      expect(await second.text()).toBe("3"); // the app's third head: the resend
      expect(heads).toHaveLength(3);
      expect(heads[1]).toStartWith("GET /two HTTP/1.1\r\nhost: 127.0.0.1:");
      expect(heads[1]).toMatch(/\r\nx-custom: b(\r\n|$)/);
      expect(heads[2]).toBe(heads[1]!);
    } finally {
      await sidecar.stop();
      rawApp.stop(true);
    }
  });

  test("a body with a Content-Length streams through the fast path, and is counted there", async () => {
    const m = startSidecar({ service: { name: "caller" }, listen: { fastPath: true }, services: { shop: { endpoints: [endpoint] } } });
    const admin = m.addresses.admin!;
    const get = await viaProxy(`http://${m.addresses.consumer}`, "http://shop/count");
    expect(get.status).toBe(200);
    await get.text();
    expect(await metric(admin, 'requests_total{service_name="shop"')).toBe(1);
    expect(await metric(admin, "mesher_fast_path_requests_total")).toBe(1);
    const payload = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
    const post = await viaProxy(`http://${m.addresses.consumer}`, "http://shop/upload", { method: "PUT", body: payload });
    const p = (await post.json()) as { method: string; bodyBytes: number; sum: number };
    expect(p).toMatchObject({ method: "PUT", bodyBytes: payload.byteLength, sum: checksum(payload) });
    expect(await metric(admin, 'requests_total{service_name="shop"')).toBe(2);
    expect(await metric(admin, "mesher_fast_path_requests_total")).toBe(2);
    // The same connection still takes the fast path afterwards.
    await (await viaProxy(`http://${m.addresses.consumer}`, "http://shop/count")).text();
    expect(await metric(admin, "mesher_fast_path_requests_total")).toBe(3);
    await m.stop();
  });

  test("a stop lets the request in flight finish", async () => {
    const m = startSidecar({ service: { name: "caller" }, listen: { fastPath: true }, services: { shop: { endpoints: [endpoint] } } });
    const started = new Promise<void>((r) => (slowStarted = r));
    const pending = viaProxy(`http://${m.addresses.consumer}`, "http://shop/slow");
    await started;
    const stopped = m.stop();
    releaseSlow();
    const res = await pending;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("slow done");
    await stopped;
  });
});

describe("fast path on the provider side", () => {
  const off = { listen: { provider: "127.0.0.1:0", fastPath: false } };
  const on = { listen: { provider: "127.0.0.1:0", fastPath: true } };
  test("two hops: the app receives the same request, and a body arrives whole, as with the regular engines", async () => {
    const fastPair = twoSidecars(app.port!, { a: { listen: { fastPath: true } }, b: on });
    const slowPair = twoSidecars(app.port!, { a: { listen: { fastPath: false } }, b: off });
    try {
      const init = { headers: { "x-custom": "v", "x-forwarded-port": String(app.port) } };
      const get = async (proxy: string) => {
        const r = (await (await viaProxy(proxy, "http://promotion/p?x=2", init)).json()) as { headers: Record<string, string>; peer?: number };
        delete r.peer;
        r.headers["x-cse-context"] = r.headers["x-cse-context"]!; // the caller's identity travels
        r.headers["x-forwarded-for"] = r.headers["x-forwarded-for"]!.replace(/\d+\.\d+\.\d+\.\d+/g, "IP");
        return r;
      };
      const a = await get(fastPair.proxy);
      expect(a).toEqual(await get(slowPair.proxy));
      expect(a.headers["x-mesher-via"]).toBeUndefined();
      expect(a.headers["x-forwarded-for"]).toBe("IP, IP");
      const payload = new Uint8Array(200_000).map((_, i) => (i * 7) % 256);
      const put = (await (await viaProxy(fastPair.proxy, "http://promotion/upload", { method: "PUT", body: payload })).json()) as { sum: number };
      expect(put.sum).toBe(checksum(payload));
      const text = await (await fetch(`http://${fastPair.b.addresses.admin}/v1/mesher/metrics`)).text();
      expect(text).toMatch(/^mesher_fast_path_requests_total 2$/m);
      expect(text).toMatch(/^requests_total\{service_name="promotion",app="default",version="1.0.0"\} 2$/m);
    } finally {
      await Promise.all([fastPair.stop(), slowPair.stop()]);
    }
  });
});

/** Position-weighted, so reordered or shifted bytes show. */
function checksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < b.length; i++) sum = (sum * 31 + b[i]!) % 1_000_000_007;
  return sum;
}

async function metric(admin: string, prefix: string): Promise<number> {
  const text = await (await fetch(`http://${admin}/v1/mesher/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(prefix));
  return Number(line?.split(" ").pop() ?? 0);
}

describe("fast path and discovery", () => {
  test("a service found through the registry after start takes the fast path once known", async () => {
    const registry = memoryRegistry();
    const provider = startSidecar({ service: { name: "stock", ports: { http: app.port! } }, listen: { provider: "127.0.0.1:0" }, registry });
    const caller = startSidecar({ service: { name: "web" }, registry });
    try {
      await waitFor("stock registered", async () => (await registry.list("stock")).length === 1);
      const first = await viaProxy(`http://${caller.addresses.consumer}`, "http://stock/a");
      expect(first.status).toBe(200); // the regular path asked the registry
      await first.text();
      const admin = caller.addresses.admin!;
      const before = await metric(admin, "mesher_fast_path_requests_total");
      const second = await curl(["-s", "-x", caller.addresses.consumer, "http://stock/b"]);
      expect(second.body).toContain('"path":"/b"');
      expect(await metric(admin, "mesher_fast_path_requests_total")).toBe(before + 1);
    } finally {
      await Promise.all([provider.stop(), caller.stop()]);
    }
  });
});

describe('listen.fastPath: "auto"', () => {
  const useful = (c: Parameters<typeof resolveConfig>[0], side: "consumer" | "provider") => fastPathUseful(resolveConfig(c), side);
  test("on for a plain config, off where nothing would take it", () => {
    const base = { service: { name: "me" }, services: { shop: { endpoints: ["127.0.0.1:1"] } } };
    expect(resolveConfig(base).listen.fastPath).toBe("auto");
    expect(useful(base, "consumer")).toBe(true);
    expect(useful(base, "provider")).toBe(true);
    // A policy on one service leaves the others fast.
    expect(useful({ ...base, services: { shop: { endpoints: ["127.0.0.1:1"], retry: { attempts: 2 } } } }, "consumer")).toBe(true);
    // A default every service inherits, the access log, a custom chain: nothing is fast.
    expect(useful({ ...base, retry: { attempts: 2 } }, "consumer")).toBe(false);
    expect(useful({ ...base, loadBalancer: { kind: "random" } }, "consumer")).toBe(false);
    expect(useful({ ...base, accessLog: { enabled: true } }, "consumer")).toBe(false);
    expect(useful({ ...base, accessLog: { enabled: true } }, "provider")).toBe(false);
    expect(useful({ ...base, chains: { consumer: ["router", "loadBalance", "transport"] } }, "consumer")).toBe(false);
    expect(useful({ ...base, retry: { attempts: 2 } }, "provider")).toBe(true);
    // Tracing: spans are made on the fast path too.
    expect(useful({ ...base, tracing: {} }, "consumer")).toBe(true); // sampler 1 by default
    expect(useful({ ...base, tracing: { sampler: 0.01 } }, "consumer")).toBe(true);
    expect(useful({ ...base, tracing: { sampler: 0.01 } }, "provider")).toBe(true);
  });
});

describe("fast path with tracing", () => {
  test("unsampled requests carry the tracer's headers, sampled ones are traced: all on the fast path", async () => {
    const otlp = await startOtlpReceiver();
    const tracing = { sampler: 0.5, flushInterval: "100ms", otlp: { endpoint: otlp.url } };
    const pair = twoSidecars(app.port!, {
      a: { listen: { fastPath: true }, tracing },
      b: { listen: { provider: "127.0.0.1:0", fastPath: true }, tracing },
    });
    try {
      // 60 requests over one keep-alive connection (curl reuses it; num_connects says so).
      const n = 60;
      const urls = Array.from({ length: n }, (_, i) => `http://promotion/t/${i}`);
      const r = await run(["curl", "-sS", "-x", pair.a.addresses.consumer!, "-w", "\n%{num_connects}\n", ...urls]);
      const lines = r.stdout.trim().split("\n");
      const seenByApp = lines.filter((_, i) => i % 2 === 0).map((l) => (JSON.parse(l) as { headers: Record<string, string> }).headers);
      expect(seenByApp.length).toBe(n);
      expect(lines.filter((_, i) => i % 2 === 1).reduce((a, b) => a + Number(b), 0)).toBe(1);

      const sampled = seenByApp.filter((h) => h.traceparent !== undefined);
      const unsampled = seenByApp.filter((h) => h.traceparent === undefined);
      expect(sampled.length).toBeGreaterThan(10); // 30 expected; 5 standard deviations off
      expect(sampled.length).toBeLessThan(50);
      // The regular path's headers: a request id on every request, the "not sampled" decision
      // on the others.
      expect(new Set(seenByApp.map((h) => h["x-request-id"])).size).toBe(n);
      expect(unsampled.every((h) => h["x-b3-sampled"] === "0")).toBe(true);
      expect(sampled.every((h) => /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/.test(h.traceparent!))).toBe(true);
      // Each sampled request has a client span (consumer) and a server span (provider).
      const ids = new Set(sampled.map((h) => h.traceparent!.split("-")[1]));
      const spans = await otlp.waitFor((s) => s.length >= 2 * ids.size);
      expect(spans.length).toBe(2 * ids.size);
      for (const id of ids) {
        const mine = spans.filter((s) => s.traceId === id);
        expect(mine.map((s) => `${s.service}:${s.kind}`).sort()).toEqual(["promotion:SPAN_KIND_SERVER", "shop:SPAN_KIND_CLIENT"]);
        const client = mine.find((s) => s.kind === "SPAN_KIND_CLIENT")!;
        expect(mine.find((s) => s.kind === "SPAN_KIND_SERVER")!.parentSpanId).toBe(client.spanId); // chained across the hop
      }
      // All of them took the fast path on both sides (the connection was not handed over).
      expect(await metric(pair.a.addresses.admin!, "mesher_fast_path_requests_total")).toBe(n);
      expect(await metric(pair.b.addresses.admin!, "mesher_fast_path_requests_total")).toBe(n);
      expect(await metric(pair.a.addresses.admin!, 'requests_total{service_name="promotion"')).toBe(n);

      // A caller's decision is kept: "no" travels as it came, on the fast path; "yes" is traced.
      const parent = "4bf92f3577b34da6a3ce929d0e0e4736";
      const no = (await (await viaProxy(pair.proxy, "http://promotion/no", { headers: { traceparent: `00-${parent}-00f067aa0ba902b7-00` } })).json()) as { headers: Record<string, string> };
      expect(no.headers.traceparent).toBe(`00-${parent}-00f067aa0ba902b7-00`);
      expect(no.headers["x-b3-sampled"]).toBeUndefined();
      expect(await metric(pair.a.addresses.admin!, "mesher_fast_path_requests_total")).toBe(n + 1);
      const yes = (await (await viaProxy(pair.proxy, "http://promotion/yes", { headers: { traceparent: `00-${parent}-00f067aa0ba902b7-01` } })).json()) as { headers: Record<string, string> };
      expect(yes.headers.traceparent).toMatch(new RegExp(`^00-${parent}-[0-9a-f]{16}-01$`));
      await otlp.waitFor((s) => s.filter((x) => x.traceId === parent).length === 2);
      expect(await metric(pair.a.addresses.admin!, "mesher_fast_path_requests_total")).toBe(n + 2);
    } finally {
      await pair.stop();
      await otlp.stop();
    }
  });

  test("a span carries the request's own start and end times (spans are made after the hop ends)", async () => {
    const otlp = await startOtlpReceiver();
    const m = startSidecar({ service: { name: "caller" }, listen: { fastPath: true }, tracing: { sampler: 1, flushInterval: "100ms", otlp: { endpoint: otlp.url } }, services: { shop: { endpoints: [endpoint] } } });
    try {
      const before = BigInt(Date.now() - 1) * 1_000_000n;
      const res = await viaProxy(`http://${m.addresses.consumer}`, "http://shop/delay?ms=80");
      expect(await res.text()).toBe("late");
      const after = BigInt(Date.now() + 1) * 1_000_000n;
      const [span] = await otlp.waitFor((s) => s.length === 1);
      expect(span!.startNanos >= before && span!.startNanos <= after).toBe(true);
      expect(span!.endNanos <= after).toBe(true);
      expect(span!.endNanos - span!.startNanos >= 80_000_000n).toBe(true);
      expect(await metric(m.addresses.admin!, "mesher_fast_path_requests_total")).toBe(1);
    } finally {
      await m.stop();
      await otlp.stop();
    }
  });

  test("a span made on the fast path is the one the regular engine makes", async () => {
    const otlp = await startOtlpReceiver();
    const tracing = { sampler: 1, flushInterval: "100ms", otlp: { endpoint: otlp.url } };
    const pair = (fastPath: boolean) =>
      twoSidecars(app.port!, {
        a: { listen: { fastPath }, tracing },
        b: { listen: { provider: "127.0.0.1:0", fastPath }, tracing },
      });
    const fastPair = pair(true);
    const slowPair = pair(false);
    try {
      /** The two spans of one call, without what differs between two calls (ids, times, ports). */
      const spansOf = async (proxy: string, traceId: string) => {
        const init = { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, "user-agent": "span-test", "x-request-id": "rid-1" } };
        expect((await viaProxy(proxy, "http://promotion/span/x?q=1", init)).status).toBe(200);
        const spans = (await otlp.waitFor((s) => s.filter((x) => x.traceId === traceId).length === 2)).filter((x) => x.traceId === traceId);
        return spans
          .map((x) => {
            const attributes = { ...x.attributes };
            for (const k of ["mesher.endpoint", "network.peer.address", "network.peer.port", "client.address"]) {
              if (typeof attributes[k] === "string") attributes[k] = String(attributes[k]).replace(/:\d+$/, ":PORT");
              if (k === "network.peer.port" && attributes[k] !== undefined) attributes[k] = "PORT";
            }
            return { name: x.name, kind: x.kind, service: x.service, status: x.status, parentIsCaller: x.parentSpanId === "00f067aa0ba902b7", attributes };
          })
          .sort((p, q) => p.kind.localeCompare(q.kind));
      };
      const fast = await spansOf(fastPair.proxy, "11111111111111111111111111111111");
      const slow = await spansOf(slowPair.proxy, "22222222222222222222222222222222");
      expect(fast).toEqual(slow);
      expect(fast.map((x) => `${x.service}:${x.kind}`)).toEqual(["shop:SPAN_KIND_CLIENT", "promotion:SPAN_KIND_SERVER"]);
      expect(fast[0]!.attributes["url.query"]).toBe("q=1");
      expect(fast[1]!.attributes["mesher.source_service"]).toBe("shop");
      expect(await metric(fastPair.a.addresses.admin!, "mesher_fast_path_requests_total")).toBe(1);
      expect(await metric(fastPair.b.addresses.admin!, "mesher_fast_path_requests_total")).toBe(1);
    } finally {
      await Promise.all([fastPair.stop(), slowPair.stop()]);
      await otlp.stop();
    }
  });
});
