import { afterAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { gzipSync } from "node:zlib";
import { MeshError } from "../../pipeline/errors.ts";
import { h1Request, Pool } from "./client.ts";
import { rawHttpServer } from "../../../test/helpers.ts";

const cleanup: (() => void)[] = [];
afterAll(() => cleanup.forEach((f) => f()));

function app(fetch: (req: Request) => Response | Promise<Response>) {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 0, fetch });
  cleanup.push(() => s.stop(true));
  return new Pool(`127.0.0.1:${s.port}`, "127.0.0.1", s.port!);
}

/** A raw TCP server for faults (test/helpers.ts `rawHttpServer`), as a pool. */
function rawServer(onRequest: (s: Socket<{ n: number; buf: string }>, n: number, head: string) => void, onClose?: () => void) {
  const l = rawHttpServer(onRequest, onClose);
  cleanup.push(() => l.stop(true));
  return new Pool(`127.0.0.1:${l.port}`, "127.0.0.1", l.port);
}

const get = (pool: Pool, path = "/", init: Partial<Parameters<typeof h1Request>[1]> = {}) =>
  h1Request(pool, {
    method: "GET",
    path,
    headers: new Headers({ host: pool.address }),
    body: null,
    signal: new AbortController().signal,
    ...init,
  });

async function rejection(p: Promise<unknown>): Promise<MeshError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(MeshError);
    return err as MeshError;
  }
  throw new Error("expected a rejection");
}

describe("h1 client", () => {
  test("sends method, path, headers; reuses one connection for sequential requests", async () => {
    const pool = app(async (req) => Response.json({ m: req.method, url: req.url, x: req.headers.get("x-a"), body: await req.text() }));
    for (let i = 0; i < 5; i++) {
      const r = await get(pool, `/p?i=${i}`, { headers: new Headers({ host: "svc", "x-a": "1" }) });
      expect(await r.json()).toEqual({ m: "GET", url: `http://svc/p?i=${i}`, x: "1", body: "" });
    }
    const r = await h1Request(pool, { method: "POST", path: "/", headers: new Headers({ host: "svc" }), body: new TextEncoder().encode("abc"), signal: new AbortController().signal });
    expect((await r.json()).body).toBe("abc");
    expect(pool.opened).toBe(1);
    expect(pool.idle.length).toBe(1);
  });

  test("idle connections are closed after the idle timeout", async () => {
    const pool = app(() => new Response("ok"));
    pool.idleTimeout = 1;
    await (await get(pool)).text();
    expect(pool.idle.length).toBe(1);
    for (let i = 0; i < 300 && pool.idle.length; i++) await Bun.sleep(50);
    expect(pool.idle.length).toBe(0);
    expect(await (await get(pool)).text()).toBe("ok");
    expect(pool.opened).toBe(2);
  }, 20_000);

  test("concurrent requests open more connections, then all go back to the pool", async () => {
    const pool = app(async () => {
      await Bun.sleep(5);
      return new Response("ok");
    });
    const rs = await Promise.all(Array.from({ length: 10 }, () => get(pool).then((r) => r.text())));
    expect(rs).toEqual(Array(10).fill("ok"));
    expect(pool.opened).toBe(10);
    expect(pool.idle.length).toBe(10);
  });

  test("a kept-alive connection the endpoint closed is retried once for GET, not for POST", async () => {
    // The server answers the first request of each connection and drops the connection on the second.
    const pool = rawServer((s, n) => {
      if (n === 1) s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      else s.end();
    });
    expect(await (await get(pool)).text()).toBe("ok");
    expect(await (await get(pool)).text()).toBe("ok"); // reused, dropped, retried fresh
    expect(pool.opened).toBe(2);
    const err = await rejection(h1Request(pool, { method: "POST", path: "/", headers: new Headers({ host: "x" }), body: null, signal: new AbortController().signal }));
    expect(err.code).toBe("upstream_reset");
  });

  test("chunked response bodies stream chunk by chunk", async () => {
    let release!: () => void;
    const second = new Promise<void>((r) => (release = r));
    const pool = app(() => new Response(new ReadableStream({
      async start(c) {
        c.enqueue(new TextEncoder().encode("first "));
        await second;
        c.enqueue(new TextEncoder().encode("second"));
        c.close();
      },
    })));
    const r = await get(pool);
    const reader = r.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("first ");
    release();
    let rest = "";
    for (let x = await reader.read(); !x.done; x = await reader.read()) rest += new TextDecoder().decode(x.value);
    expect(rest).toBe("second");
    // The connection goes back to the pool after the last chunk.
    await get(pool).then((r) => r.text());
    expect(pool.opened).toBe(1);
  });

  test("a connection whose reading was paused by a slow reader is usable again afterwards", async () => {
    const pool = app((req) => new URL(req.url).pathname === "/big" ? new Response(new Uint8Array(4 * 1024 * 1024)) : new Response("small"));
    const r = await get(pool, "/big");
    let n = 0;
    for await (const c of r.body!) {
      n += c.byteLength;
      await Bun.sleep(1); // slower than the socket: the stream fills and reading pauses
    }
    expect(n).toBe(4 * 1024 * 1024);
    expect(await (await get(pool, "/small")).text()).toBe("small");
    expect(pool.opened).toBe(1);
  });

  test("a body delimited by the connection closing is read to the end; the connection is not reused", async () => {
    const pool = rawServer((s) => {
      s.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ");
      setTimeout(() => s.end("the end"), 5);
    });
    expect(await (await get(pool)).text()).toBe("until the end");
    expect(pool.idle.length).toBe(0);
  });

  test("compressed bodies pass byte-exact with their Content-Encoding", async () => {
    const gz = gzipSync(Buffer.from("hello ".repeat(1000)));
    const pool = app(() => new Response(gz, { headers: { "content-encoding": "gzip", "content-type": "text/plain" } }));
    const r = await get(pool, "/", { headers: new Headers({ host: "x", "accept-encoding": "gzip" }) });
    expect(r.headers.get("content-encoding")).toBe("gzip");
    expect(Buffer.from(await r.arrayBuffer())).toEqual(gz);
  });

  test("hop-by-hop response headers, and those Connection names, are removed", async () => {
    const pool = rawServer((s) => {
      s.write("HTTP/1.1 200 OK\r\nConnection: X-Secret, keep-alive\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nX-Kept: yes\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n");
    });
    const r = await get(pool);
    expect(r.headers.get("x-kept")).toBe("yes");
    for (const h of ["connection", "x-secret", "keep-alive", "proxy-authenticate"]) expect(r.headers.has(h)).toBe(false);
    expect(r.headers.getSetCookie()).toEqual(["a=1", "b=2"]);
  });

  test("connection refused is upstream_connect_failure", async () => {
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = l.port;
    l.stop(true);
    const err = await rejection(get(new Pool(`127.0.0.1:${port}`, "127.0.0.1", port)));
    expect(err.code).toBe("upstream_connect_failure");
  });

  test("a garbage response is upstream_reset", async () => {
    const pool = rawServer((s) => s.write("SSH-2.0-OpenSSH_9\r\n\r\n"));
    expect((await rejection(get(pool))).code).toBe("upstream_reset");
  });

  test("aborting cancels the request: the endpoint sees the connection close; a MeshError reason is kept", async () => {
    let closed!: () => void;
    const sawClose = new Promise<void>((r) => (closed = r));
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {}, close: () => closed() } });
    cleanup.push(() => l.stop(true));
    const pool = new Pool(`127.0.0.1:${l.port}`, "127.0.0.1", l.port);
    const ac = new AbortController();
    const p = get(pool, "/", { signal: ac.signal });
    await Bun.sleep(20);
    ac.abort();
    expect((await rejection(p)).code).toBe("upstream_reset");
    await sawClose;
    const ac2 = new AbortController();
    const p2 = get(pool, "/", { signal: ac2.signal });
    ac2.abort(new MeshError("upstream_timeout", "deadline"));
    expect((await rejection(p2)).code).toBe("upstream_timeout");
  });

  test("cancelling a response body mid-stream closes the upstream connection", async () => {
    let closed!: () => void;
    const sawClose = new Promise<void>((r) => (closed = r));
    let timer: Timer | undefined;
    const pool = rawServer((s) => {
      s.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
      timer = setInterval(() => s.write("1\r\n.\r\n"), 5); // never ends on its own
    }, () => {
      clearInterval(timer);
      closed();
    });
    const r = await get(pool);
    const reader = r.body!.getReader();
    await reader.read();
    await reader.cancel();
    await sawClose;
    expect(pool.idle.length).toBe(0);
  });

  test("a 100 MB streamed upload and download pass with memory flat", async () => {
    // In a fresh process, so that other tests' garbage does not blur the peak.
    const p = Bun.spawn(["bun", `${import.meta.dir}/flat-memory.fixture.ts`], { stdout: "pipe", stderr: "inherit" });
    const out = JSON.parse(await new Response(p.stdout).text());
    expect(out.received).toBe(100 * 1024 * 1024);
    expect(out.got).toBe(100 * 1024 * 1024);
    // Buffering either direction would add 100 MB; streaming adds a few chunks.
    expect(out.peak - out.base).toBeLessThan(60);
  }, 30_000);

  test("large bodies survive short writes byte for byte (buffered and streamed)", async () => {
    const pool = app(async (req) => {
      const h = new Bun.CryptoHasher("sha256");
      for await (const c of req.body!) {
        h.update(c);
        await Bun.sleep(0); // read slowly: the socket fills and writes come back short
      }
      return new Response(h.digest("hex"));
    });
    const data = new Uint8Array(32 * 1024 * 1024).map((_, i) => (i * 7) & 255);
    const sha = new Bun.CryptoHasher("sha256").update(data).digest("hex");
    const put = (body: Uint8Array | ReadableStream<Uint8Array>) =>
      h1Request(pool, { method: "PUT", path: "/", headers: new Headers({ host: "x" }), body, signal: new AbortController().signal }).then((r) => r.text());
    expect(await put(data)).toBe(sha);
    let off = 0;
    expect(await put(new ReadableStream({ pull(c) {
      if (off >= data.length) return c.close();
      c.enqueue(data.subarray(off, (off += 3 * 1024 * 1024 + 17)));
    } }))).toBe(sha);
  }, 30_000);

  test("an early answer before the upload ends is returned, and the connection dropped", async () => {
    const pool = rawServer((s) => s.write("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\n\r\nbig"));
    let n = 0;
    const upload = new ReadableStream<Uint8Array>({
      async pull(c) {
        await Bun.sleep(2);
        if (n++ > 50) return c.close();
        c.enqueue(new Uint8Array(1000));
      },
    });
    const r = await h1Request(pool, { method: "POST", path: "/", headers: new Headers({ host: "x" }), body: upload, signal: new AbortController().signal });
    expect(r.status).toBe(413);
    expect(await r.text()).toBe("big");
    expect(pool.idle.length).toBe(0);
  });
});
