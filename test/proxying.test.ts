/**
 * The proxying rules of the data path, through two real sidecars to real apps.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { curl, startApp, startEchoApp, startSidecar, twoSidecars, viaProxy } from "./helpers.ts";

describe("proxying rules", () => {
  const app = startEchoApp("promotion");
  const other = startEchoApp("promotion-admin-port");
  const mesh = twoSidecars(app.port!, {
    b: { service: { name: "promotion", ports: { http: app.port!, admin: other.port! } }, listen: { provider: "127.0.0.1:0" } },
  });
  afterAll(async () => {
    await mesh.stop();
    app.stop(true);
    other.stop(true);
  });

  test("hop-by-hop request headers are not forwarded, end-to-end ones are", async () => {
    const r = await curl([
      "-x", mesh.proxy,
      "-H", "Connection: keep-alive, X-Hop-Custom",
      "-H", "X-Hop-Custom: drop-me",
      "-H", "Keep-Alive: timeout=5",
      "-H", "Proxy-Authorization: Basic c2VjcmV0",
      "-H", "TE: trailers",
      "-H", "Trailer: X-Checksum",
      "-H", "X-End-To-End: keep-me",
      "http://promotion/h",
    ]);
    expect(r.status).toBe(200);
    const h = JSON.parse(r.body).headers as Record<string, string>;
    for (const name of ["x-hop-custom", "keep-alive", "proxy-authorization", "te", "trailer"]) {
      expect(h[name]).toBeUndefined();
    }
    expect(h["x-end-to-end"]).toBe("keep-me");
  });

  test("Host is the upstream's; X-Forwarded-For/-Proto/-Host are set", async () => {
    const r = await curl(["-x", mesh.proxy, "http://promotion/f"]);
    const h = JSON.parse(r.body).headers as Record<string, string>;
    expect(h.host).toBe(`127.0.0.1:${app.port}`);
    expect(h["x-forwarded-host"]).toBe("promotion");
    expect(h["x-forwarded-proto"]).toBe("http");
    expect(h["x-forwarded-for"]).toBe("127.0.0.1, 127.0.0.1"); // the app's address, then sidecar A's
  });

  test("origin-form with Host: <service> works like absolute-form", async () => {
    const r = await curl(["-H", "Host: promotion", `${mesh.proxy}/origin?q=1`]);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).path).toBe("/origin?q=1");
  });

  test("a port in the URL travels as X-Forwarded-Port and picks that app port when declared", async () => {
    const r = await curl(["-x", mesh.proxy, `http://promotion:${other.port}/p`]);
    const body = JSON.parse(r.body);
    expect(body.app).toBe("promotion-admin-port");
    expect(body.headers["x-forwarded-port"]).toBe(String(other.port));
    // A port the app does not declare falls back to service.ports.http.
    const r2 = await curl(["-x", mesh.proxy, "http://promotion:80/p"]);
    expect(JSON.parse(r2.body).app).toBe("promotion");
  });

  test("request bodies stream to the app", async () => {
    const data = new Uint8Array(3 * 1024 * 1024).fill(7);
    const res = await viaProxy(mesh.proxy, "http://promotion/upload", { method: "POST", body: data });
    expect(res.status).toBe(200);
    expect((await res.json()).bodyBytes).toBe(data.byteLength);
  });
});

describe("response passing", () => {
  const payload = gzipSync(Buffer.from("hello compressed world ".repeat(1000)));
  let cancelled: (reason: string) => void;
  const cancelledP = new Promise<string>((r) => (cancelled = r));
  let secondSent: () => void;
  const secondSentP = new Promise<void>((r) => (secondSent = r));
  let releaseSecond: () => void;
  const releaseSecondP = new Promise<void>((r) => (releaseSecond = r));

  const app = startApp((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/gzip") {
      return new Response(payload, { headers: { "content-encoding": "gzip", "content-type": "text/plain" } });
    }
    if (path === "/slow-stream") {
      let timer: Timer;
      return new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode("first chunk\n"));
            timer = setInterval(() => c.enqueue(new TextEncoder().encode(".")), 50);
          },
          cancel(reason) {
            clearInterval(timer);
            cancelled(String(reason));
          },
        }),
      );
    }
    if (path === "/sse") {
      return new Response(
        new ReadableStream({
          async start(c) {
            c.enqueue(new TextEncoder().encode("data: one\n\n"));
            await releaseSecondP; // the test lets the second event go once it has read the first
            // Stay silent longer than the sidecars' idle timeout (1 s) before the second event.
            await Bun.sleep(2500);
            c.enqueue(new TextEncoder().encode("data: two\n\n"));
            secondSent();
            c.close();
          },
        }),
        { headers: { "content-type": "text/event-stream" } },
      );
    }
    return new Response("not found", { status: 404 });
  });
  const mesh = twoSidecars(app.port!, {
    a: { listen: { idleTimeout: "1s" } },
    b: { service: { name: "promotion", ports: { http: app.port! } }, listen: { provider: "127.0.0.1:0", idleTimeout: "1s" } },
  });
  afterAll(async () => {
    await mesh.stop();
    app.stop(true);
  });

  test("a compressed response passes byte-exact with its Content-Encoding", async () => {
    const res = await viaProxy(mesh.proxy, "http://promotion/gzip", { headers: { "accept-encoding": "gzip" }, decompress: false } as RequestInit);
    expect(res.headers.get("content-encoding")).toBe("gzip");
    const got = new Uint8Array(await res.arrayBuffer());
    expect(Buffer.from(got).equals(payload)).toBe(true);
  });

  test("a client that disconnects cancels the upstream request", async () => {
    const ac = new AbortController();
    const res = await viaProxy(mesh.proxy, "http://promotion/slow-stream", { signal: ac.signal });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain("first chunk");
    ac.abort();
    const reason = await Promise.race([cancelledP, Bun.sleep(10_000).then(() => "not cancelled")]);
    expect(reason).not.toBe("not cancelled");
  });

  test("server-sent events flow chunk by chunk and survive a silence longer than the idle timeout", async () => {
    const res = await viaProxy(mesh.proxy, "http://promotion/sse");
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes("data: one")) text += decoder.decode((await reader.read()).value);
    // The first event arrived before the app even started on the second.
    releaseSecond();
    let sent = false;
    secondSentP.then(() => (sent = true));
    expect(sent).toBe(false);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    expect(text).toContain("data: two");
  });
});

describe("python clients and apps", () => {
  test("Python urllib with http_proxy reaches a Python http.server app through two sidecars", async () => {
    const { startPythonServer, tempDir, run } = await import("./helpers.ts");
    const dir = tempDir({ "hello.txt": "hello from python\n" });
    const py = await startPythonServer(dir);
    const mesh = twoSidecars(py.port);
    try {
      const script = `import urllib.request\nprint(urllib.request.urlopen("http://promotion/hello.txt", timeout=10).read().decode(), end="")`;
      const r = await run(["python3", "-c", script], { env: { http_proxy: mesh.proxy, no_proxy: "" } });
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe("hello from python\n");
    } finally {
      await mesh.stop();
      py.stop();
    }
  });
});

test("an app directly behind one sidecar (no provider side) is reachable", async () => {
  const app = startEchoApp("direct");
  const a = startSidecar({ service: { name: "shop" }, services: { direct: { endpoints: [`127.0.0.1:${app.port}`] } } });
  try {
    const r = await curl(["-x", `http://${a.addresses.consumer}`, "http://direct/x"]);
    expect(JSON.parse(r.body).app).toBe("direct");
  } finally {
    await a.stop();
    app.stop(true);
  }
});
