/**
 * The transport's HTTP/1.1 client seen from outside: real apps, two real sidecars, curl.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { curl, startApp, startSidecar, twoSidecars, viaProxy } from "./helpers.ts";

describe("upstream client through two sidecars", () => {
  const gz = gzipSync(Buffer.from("compressed ".repeat(5000)));
  let aborted!: () => void;
  const sawAbort = new Promise<void>((r) => (aborted = r));
  const app = startApp(async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/gz") return new Response(gz, { headers: { "content-encoding": "gzip", "content-type": "text/plain" } });
    if (path === "/hang") {
      req.signal.addEventListener("abort", () => aborted());
      return new Promise<Response>(() => {});
    }
    if (path === "/echo") {
      let n = 0;
      const h = new Bun.CryptoHasher("sha256");
      for await (const c of req.body!) (n += c.byteLength), h.update(c);
      return Response.json({ n, sha: h.digest("hex") });
    }
    if (path === "/stream") {
      let i = 0;
      return new Response(new ReadableStream({
        pull(c) {
          if (i++ === 20) return c.close();
          c.enqueue(new Uint8Array(1024 * 1024).fill(i));
        },
      }));
    }
    return new Response("hello");
  });
  const mesh = twoSidecars(app.port!);
  afterAll(async () => {
    await mesh.stop();
    app.stop(true);
  });

  test("a gzip body arrives byte for byte with its Content-Encoding", async () => {
    const r = await viaProxy(mesh.proxy, "http://promotion/gz", { headers: { "accept-encoding": "gzip" }, decompress: false } as RequestInit);
    expect(r.headers.get("content-encoding")).toBe("gzip");
    expect(Buffer.from(await r.arrayBuffer())).toEqual(gz);
  });

  test("a 20 MB upload arrives whole (streamed, no Content-Length) and a 20 MB download too", async () => {
    const data = new Uint8Array(20 * 1024 * 1024).map((_, i) => i * 31);
    let off = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (off >= data.length) return c.close();
        c.enqueue(data.subarray(off, (off += 1024 * 1024)));
      },
    });
    const r = await viaProxy(mesh.proxy, "http://promotion/echo", { method: "POST", body, duplex: "half" } as RequestInit);
    expect(await r.json()).toEqual({ n: data.length, sha: new Bun.CryptoHasher("sha256").update(data).digest("hex") });
    const d = await viaProxy(mesh.proxy, "http://promotion/stream");
    expect((await d.arrayBuffer()).byteLength).toBe(20 * 1024 * 1024);
  });

  test("many requests ride a few kept-alive connections", async () => {
    for (let i = 0; i < 3; i++) {
      const rs = await Promise.all(Array.from({ length: 20 }, () => viaProxy(mesh.proxy, "http://promotion/").then((r) => r.text())));
      expect(rs).toEqual(Array(20).fill("hello"));
    }
  });

  test("a client that goes away cancels the request at the app", async () => {
    const r = await curl(["-x", mesh.proxy, "--max-time", "0.5", "http://promotion/hang"]);
    expect(r.status).toBe(0); // curl gave up
    await sawAbort; // the app saw its request cancelled through both hops
  });
});

test("an endpoint that refuses connections answers 502 upstream_connect_failure", async () => {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const dead = `127.0.0.1:${l.port}`;
  l.stop(true);
  const a = startSidecar({ service: { name: "shop" }, services: { gone: { endpoints: [dead] } } });
  try {
    const r = await curl(["-x", `http://${a.addresses.consumer}`, "-i", "http://gone/"]);
    expect(r.status).toBe(502);
    expect(r.body).toContain("x-mesher-error: upstream_connect_failure");
  } finally {
    await a.stop();
  }
});
