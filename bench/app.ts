/**
 * The benchmark's app: a Bun.serve hello world on a free port. Prints "port N" when ready.
 */
const chunk = new Uint8Array(4096).fill(120);
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  idleTimeout: 0,
  fetch(req) {
    // /stream: 64 KB in 16 chunks over ~16 ms, so that a client can leave mid-response (soak).
    if (req.url.endsWith("/stream")) {
      let i = 0;
      return new Response(new ReadableStream({
        async pull(c) {
          if (i++ === 16) return c.close();
          await Bun.sleep(1);
          c.enqueue(chunk);
        },
      }));
    }
    return new Response("hello world\n");
  },
});
console.log(`port ${server.port}`);
