/**
 * The benchmark's app: a Bun.serve hello world on a free port (EXTRA_PORTS=N: N more ports
 * served by the same process, as N endpoints of one service). Prints "port P" and
 * "ports P1 P2 ..." when ready.
 *
 *   /          "hello world\n"
 *   /bytes/N   N bytes (Content-Length), e.g. /bytes/1024, /bytes/1048576
 *   /stream    64 KB in 16 chunks over ~16 ms, so that a client can leave mid-response (soak)
 */
const chunk = new Uint8Array(4096).fill(120);
const sized = new Map<number, Uint8Array<ArrayBuffer>>();

function fetch(req: Request): Response {
  const url = req.url;
  const path = url.slice(url.indexOf("/", 8));
  if (path === "/stream") {
    let i = 0;
    return new Response(new ReadableStream({
      async pull(c) {
        if (i++ === 16) return c.close();
        await Bun.sleep(1);
        c.enqueue(chunk);
      },
    }));
  }
  if (path.startsWith("/bytes/")) {
    const n = Math.min(Number(path.slice(7)) || 0, 64 * 1024 * 1024);
    let body = sized.get(n);
    if (!body) sized.set(n, (body = new Uint8Array(n).fill(120)));
    return new Response(body);
  }
  return new Response("hello world\n");
}

const serve = (port: number) => Bun.serve({ hostname: "127.0.0.1", port, idleTimeout: 0, fetch });
const main = serve(Number(process.env.PORT ?? 0));
const extra = Array.from({ length: Number(process.env.EXTRA_PORTS ?? 0) }, () => serve(0).port);
console.log(`port ${main.port}`);
console.log(`ports ${[main.port, ...extra].join(" ")}`);
