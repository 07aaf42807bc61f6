/**
 * Trying to break two sidecars run as real processes (the CLI), with curl and fetch as the
 * app: HEAD, 204/304, Expect: 100-continue, an app that answers before reading the upload,
 * an app that hangs up mid-response, 200 calls at once, and a config edit during a long
 * stream. After all of it both sidecars are still up and serving.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, spawnMesher, startApp, startSidecar, tempDir, viaProxy, type Spawned } from "./helpers.ts";

const enc = new TextEncoder();
const app = startApp(async (req) => {
  const url = new URL(req.url);
  switch (url.pathname) {
    case "/head":
      return new Response("0123456789", { headers: { "x-kind": "head" } });
    case "/204":
      return new Response(null, { status: 204 });
    case "/304":
      return new Response(null, { status: 304, headers: { etag: '"v1"' } });
    case "/early": // answers without reading the upload
      return new Response("not you", { status: 401 });
    case "/stream": {
      // 12 ticks, 50 ms apart: long enough for a config edit to land in the middle.
      let n = 0;
      return new Response(
        new ReadableStream({
          async pull(c) {
            if (n === 12) return c.close();
            if (n > 0) await Bun.sleep(50);
            c.enqueue(enc.encode(`tick ${++n}\n`));
          },
        }),
        { headers: { "content-type": "text/event-stream" } },
      );
    }
    default: {
      const body = await req.arrayBuffer();
      return Response.json({ method: req.method, path: url.pathname, bytes: body.byteLength, expect: req.headers.get("expect") });
    }
  }
});
// A raw app that promises 100 bytes, sends 10 and hangs up.
const liar = Bun.listen({
  hostname: "127.0.0.1",
  port: 0,
  socket: { data: (sock) => void sock.end("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789") },
});

const dir = tempDir({
  "b.yaml": `service: { name: promotion, ports: { http: ${app.port} } }\nlisten: { consumer: "127.0.0.1:0", provider: "127.0.0.1:0", admin: false }\n`,
});
const aFile = join(dir, "a.json");
const aConfig = (timeout: string) =>
  JSON.stringify({ service: { name: "shop" }, listen: { consumer: "127.0.0.1:0", admin: "127.0.0.1:0" }, services: { promotion: { endpoints: [B_PROVIDER], timeout } } });
let B_PROVIDER = "";
let a: Spawned;
let b: Spawned;
let P = "";

afterAll(async () => {
  a?.proc.kill();
  b?.proc.kill();
  await Promise.all([a?.proc.exited, b?.proc.exited]);
  app.stop(true);
  liar.stop(true);
});

/** curl through shop's sidecar; -v lines kept to see connection reuse. */
async function curlVia(args: string[]) {
  return run(["curl", "-sS", "-v", "--max-time", "20", ...args]);
}

describe("two sidecars as processes under abuse", () => {
  test("start", async () => {
    b = await spawnMesher(["-c", join(dir, "b.yaml")]);
    B_PROVIDER = b.provider!;
    writeFileSync(aFile, aConfig("30s"));
    a = await spawnMesher(["-c", aFile]);
    P = `http://${a.consumer}`;
  });

  test("HEAD gets the headers and no body; the kept-alive connection still parses the next response", async () => {
    const r = await curlVia(["-I", "-x", P, "http://promotion/head", "--next", "-x", P, "http://promotion/after-head"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 200/);
    expect(r.stdout.toLowerCase()).toContain("content-length: 10");
    expect(r.stdout).toContain('"path":"/after-head"');
    expect(r.stderr).toContain("Re-using existing connection");
  });

  test("204 and 304 pass through without a body and keep the connection usable", async () => {
    const r = await curlVia(["-i", "-x", P, "http://promotion/204", "--next", "-i", "-x", P, "http://promotion/304", "--next", "-x", P, "http://promotion/after"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 204/);
    expect(r.stdout).toMatch(/HTTP\/1\.1 304[^]*etag: "v1"/i);
    expect(r.stdout).toContain('"path":"/after"');
  });

  test("an Expect: 100-continue upload gets 100 Continue and arrives whole", async () => {
    const file = join(dir, "upload.bin");
    writeFileSync(file, new Uint8Array(3 * 1024 * 1024).fill(7));
    const r = await curlVia(["-x", P, "-H", "Expect: 100-continue", "--data-binary", `@${file}`, "http://promotion/upload"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("HTTP/1.1 100 Continue");
    expect(JSON.parse(r.stdout)).toMatchObject({ method: "POST", bytes: 3 * 1024 * 1024 });
  });

  test("an app that answers before reading a 20 MB upload: the caller gets the app's answer", async () => {
    const file = join(dir, "big.bin");
    writeFileSync(file, new Uint8Array(20 * 1024 * 1024));
    for (const expectHeader of ["Expect: 100-continue", "Expect:"]) {
      const r = await curlVia(["-o", "-", "-w", "\n%{http_code}", "-x", P, "-H", expectHeader, "--data-binary", `@${file}`, "http://promotion/early"]);
      expect(r.stdout).toBe("not you\n401");
    }
  });

  test("200 calls at once all succeed", async () => {
    const statuses = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const r = await viaProxy(P, `http://promotion/c${i}`);
        const body = (await r.json()) as { path: string };
        return r.status === 200 && body.path === `/c${i}` ? "ok" : `${r.status}`;
      }),
    );
    expect(statuses.filter((s) => s !== "ok")).toEqual([]);
  });

  test("a config edit during a long stream: the stream arrives whole", async () => {
    const res = await viaProxy(P, "http://promotion/stream");
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let text = "";
    let edited = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
      if (!edited && text.includes("tick 2\n")) {
        writeFileSync(aFile, aConfig("20s"));
        edited = true;
      }
    }
    expect(text).toBe(Array.from({ length: 12 }, (_, i) => `tick ${i + 1}\n`).join(""));
    // The edit was applied (version 2) while the stream was running.
    for (let i = 0; i < 200; i++) {
      const dump = (await (await fetch(`http://${a.admin}/config_dump`)).json()) as { version: number; config: { services: { promotion: { timeout: number } } } };
      if (dump.version === 2) {
        expect(dump.config.services.promotion.timeout).toBe(20_000);
        return;
      }
      await Bun.sleep(25);
    }
    throw new Error(`the edit was never applied; mesher said:\n${a.lines.join("\n")}`);
  });
});

describe("an app that hangs up mid-response", () => {
  test("the caller sees a cut transfer, and the sidecar keeps serving", async () => {
    const dir2 = tempDir({
      "c.yaml": `service: { name: shop }\nlisten: { consumer: "127.0.0.1:0", admin: false }\nservices: { liar: { endpoints: ["127.0.0.1:${liar.port}"] }, promotion: { endpoints: ["127.0.0.1:${app.port}"] } }\n`,
    });
    const c = await spawnMesher(["-c", join(dir2, "c.yaml")]);
    try {
      const r = await curlVia(["-w", "\n%{http_code}", "-x", `http://${c.consumer}`, "http://liar/x"]);
      // curl reports the short or reset transfer, or mesher answered 502 before sending anything.
      if (r.code === 0) expect(r.stdout).toEndWith("\n502");
      const ok = await viaProxy(`http://${c.consumer}`, "http://promotion/still-up");
      expect(((await ok.json()) as { path: string }).path).toBe("/still-up");
      expect(c.proc.exitCode).toBeNull();
    } finally {
      c.proc.kill();
      await c.proc.exited;
    }
  });
});

test.each([true, false])("a GET with a body (as search clients send) still reaches the app (listen.connect: %p)", async (connect) => {
  const s = startSidecar({
    service: { name: "shop" },
    listen: { consumer: "127.0.0.1:0", admin: false, connect },
    services: { promotion: { endpoints: [`127.0.0.1:${app.port}`] } },
  });
  try {
    const r = await run(["curl", "-sS", "-X", "GET", "--data-binary", '{"query":1}', "-x", `http://${s.addresses.consumer}`, "http://promotion/search", "--next", "-x", `http://${s.addresses.consumer}`, "http://promotion/after"]);
    expect(r.code).toBe(0);
    // Bun can neither receive nor send a GET body: the app gets the GET without it.
    expect(r.stdout).toContain('{"method":"GET","path":"/search","bytes":0');
    expect(r.stdout).toContain('"path":"/after"');
  } finally {
    await s.stop();
  }
});

describe.each([true, false])("an upstream that breaks off its response (listen.connect: %p)", (connect) => {
  // Each promises more than it sends, then hangs up.
  const replies: Record<string, string> = {
    small: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
    big: "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n0123456789",
    "big-nothing": "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n",
    chunked: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n",
    "chunked-nothing": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
  };
  const breaker = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(sock, d) {
        sock.write(replies[d.toString().split(" ")[1]!.slice(1)]!);
        setTimeout(() => sock.end(), 30);
      },
    },
  });
  const s = startSidecar({
    service: { name: "shop" },
    listen: { consumer: "127.0.0.1:0", admin: false, connect },
    services: { breaker: { endpoints: [`127.0.0.1:${breaker.port}`] } },
  });
  afterAll(async () => {
    await s.stop();
    breaker.stop(true);
  });

  test.each(Object.keys(replies))("%s: the client sees a cut transfer or a 502, never a clean 200", async (name) => {
    const r = await run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "-x", `http://${s.addresses.consumer}`, `http://breaker/${name}`]);
    const clean200 = r.code === 0 && r.stdout === "200";
    expect({ name, clean200 }).toEqual({ name, clean200: false });
    if (r.code === 0) expect(r.stdout).toBe("502");
  });
});

test("both sidecars are still running, and SIGTERM stops them at once with exit 0 (nothing left in flight)", async () => {
  expect(a.proc.exitCode).toBeNull();
  expect(b.proc.exitCode).toBeNull();
  const t0 = performance.now();
  a.proc.kill("SIGTERM");
  b.proc.kill("SIGTERM");
  expect(await Promise.all([a.proc.exited, b.proc.exited])).toEqual([0, 0]);
  // drainTimeout is 30 s: a connection left open by an earlier test would hold the drain.
  expect(performance.now() - t0).toBeLessThan(10_000);
});
