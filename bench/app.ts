/**
 * The benchmark's app: a Bun.serve hello world on a free port. Prints "port N" when ready.
 */
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  idleTimeout: 0,
  fetch: () => new Response("hello world\n"),
});
console.log(`port ${server.port}`);
