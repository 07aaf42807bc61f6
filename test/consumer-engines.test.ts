/**
 * The consumer port's HTTP behaviour on both engines (node:http with CONNECT on, Bun.serve with
 * it off): bodies both ways, streaming, compression, cookies, cancellation.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { curl, startApp, twoSidecars, viaProxy } from "./helpers.ts";

let aborted = 0;
let releaseSlow: () => void = () => {};
let reachedHang: () => void = () => {};
const app = startApp(async (req) => {
  const url = new URL(req.url);
  switch (url.pathname) {
    case "/upload": {
      const bytes = new Uint8Array(await req.arrayBuffer());
      let sum = 0;
      for (let i = 0; i < bytes.length; i += 997) sum = (sum + bytes[i]!) % 1_000_003;
      return Response.json({ bytes: bytes.byteLength, sum });
    }
    case "/download":
      return new Response(new Uint8Array(Number(url.searchParams.get("n"))).fill(7));
    case "/stream": {
      let gate!: () => void;
      const second = new Promise<void>((r) => (gate = r));
      releaseSlow = gate;
      return new Response(
        new ReadableStream({
          async start(c) {
            c.enqueue(new TextEncoder().encode("first\n"));
            await second;
            c.enqueue(new TextEncoder().encode("second\n"));
            c.close();
          },
        }),
        { headers: { "content-type": "text/event-stream" } },
      );
    }
    case "/gzip":
      return new Response(gzipSync("compressed hello"), { headers: { "content-encoding": "gzip", "content-type": "text/plain" } });
    case "/cookies": {
      const h = new Headers();
      h.append("set-cookie", "a=1; Path=/");
      h.append("set-cookie", "b=2; Path=/");
      return new Response("ok", { headers: h });
    }
    case "/hang":
      req.signal.addEventListener("abort", () => aborted++);
      reachedHang();
      return new Promise<Response>(() => {});
    default:
      return Response.json({ host: req.headers.get("x-forwarded-host"), path: url.pathname });
  }
});
afterAll(() => app.stop(true));

for (const connect of [true, false]) {
  describe(`consumer engine ${connect ? "node:http (connect: true)" : "Bun.serve (connect: false)"}`, () => {
    const mesh = twoSidecars(app.port!, { a: { listen: { connect }, drainTimeout: "1s" }, b: { drainTimeout: "1s" } });
    afterAll(() => mesh.stop());

    test("a 20 MB upload and a 20 MB download pass intact", async () => {
      const body = new Uint8Array(20 << 20);
      for (let i = 0; i < body.length; i += 997) body[i] = i % 256;
      let sum = 0;
      for (let i = 0; i < body.length; i += 997) sum = (sum + body[i]!) % 1_000_003;
      const up = await viaProxy(mesh.proxy, "http://promotion/upload", { method: "POST", body });
      expect(await up.json()).toEqual({ bytes: body.length, sum });
      const down = await viaProxy(mesh.proxy, `http://promotion/download?n=${20 << 20}`);
      const got = new Uint8Array(await down.arrayBuffer());
      expect(got.byteLength).toBe(20 << 20);
      expect(got[got.length - 1]).toBe(7);
    });

    test("a streamed response arrives chunk by chunk", async () => {
      const res = await viaProxy(mesh.proxy, "http://promotion/stream");
      const reader = res.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(first).toBe("first\n"); // arrived while the app still holds the rest back
      releaseSlow();
      let rest = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        rest += new TextDecoder().decode(value);
      }
      expect(rest).toBe("second\n");
    });

    test("compressed bodies pass byte-exact with their Content-Encoding; Set-Cookie stays two headers", async () => {
      const r = await curl(["-x", mesh.proxy, "-D", "-", "-o", "/dev/null", "http://promotion/gzip"]);
      expect(r.body.toLowerCase()).toContain("content-encoding: gzip");
      const z = await curl(["-x", mesh.proxy, "--compressed", "http://promotion/gzip"]);
      expect(z.body).toBe("compressed hello");
      const c = await curl(["-x", mesh.proxy, "-D", "-", "-o", "/dev/null", "http://promotion/cookies"]);
      expect(c.body.match(/set-cookie:/gi)?.length).toBe(2);
    });

    test("a client that goes away cancels the upstream request", async () => {
      const before = aborted;
      const ac = new AbortController();
      const reached = new Promise<void>((r) => (reachedHang = r));
      const pending = viaProxy(mesh.proxy, "http://promotion/hang", { signal: ac.signal }).catch(() => undefined);
      await reached;
      ac.abort();
      await pending;
      for (let i = 0; i < 200 && aborted === before; i++) await Bun.sleep(10);
      expect(aborted).toBe(before + 1);
    });

    if (connect) {
      test("an absolute-form URL names the destination even when Host says otherwise", async () => {
        const r = await curl(["-x", mesh.proxy, "-H", "Host: elsewhere", "http://promotion/abs"]);
        expect(r.status).toBe(200);
        expect(JSON.parse(r.body).path).toBe("/abs");
      });
    }
  });
}
