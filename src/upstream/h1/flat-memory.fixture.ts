/**
 * Run by client.test.ts in a fresh process: 100 MB up and 100 MB down through the h1 client
 * against a local app; prints the process's resident memory before and at its peak (VmHWM).
 */
import { readFileSync } from "node:fs";
import { h1Request, Pool } from "./client.ts";

const MB = 1024 * 1024;
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]) / 1024;
const hwm = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]) / 1024;
const chunk = new Uint8Array(MB).fill(7);
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    let n = 0;
    for await (const c of req.body!) n += c.byteLength;
    if (req.url.endsWith("/warm")) return new Response("warm");
    let sent = 0;
    return new Response(new ReadableStream({
      pull(c) {
        if (sent >= 100 * MB) return c.close();
        sent += MB;
        c.enqueue(chunk);
      },
    }), { headers: { "x-received": String(n) } });
  },
});
const pool = new Pool(`127.0.0.1:${server.port}`, "127.0.0.1", server.port!);
// Warm up so the baseline includes the runtime's own buffers.
await (await h1Request(pool, { method: "PUT", path: "/warm", headers: new Headers({ host: "x" }), body: new Uint8Array(MB), signal: new AbortController().signal })).arrayBuffer().catch(() => {});
Bun.gc(true);
const base = rss();
let made = 0;
const upload = new ReadableStream<Uint8Array>({
  pull(c) {
    if (made >= 100 * MB) return c.close();
    made += MB;
    c.enqueue(chunk);
  },
});
const r = await h1Request(pool, { method: "PUT", path: "/", headers: new Headers({ host: "x" }), body: upload, signal: new AbortController().signal });
let got = 0;
for await (const c of r.body!) got += c.byteLength;
console.log(JSON.stringify({ received: Number(r.headers.get("x-received")), got, base, peak: hwm() }));
server.stop(true);
process.exit(0);
