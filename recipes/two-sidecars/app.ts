/** A tiny "promotion" app for the walkthrough: answers with its version and what it saw. */
const port = Number(process.env.PORT ?? 8091);
const version = process.env.VERSION ?? "v1";
Bun.serve({
  hostname: "127.0.0.1",
  port,
  fetch(req) {
    const url = new URL(req.url);
    return Response.json({
      service: "promotion",
      version,
      path: url.pathname,
      caller: JSON.parse(req.headers.get("x-cse-context") ?? "{}")["x-cse-src-microservice"] ?? null,
      calledBy: req.headers.get("x-called-by"),
    });
  },
});
console.log(`promotion ${version} on 127.0.0.1:${port}`);
