/** A tiny app for the edge-gateway recipe: answers with its name and what it received. */
export function startApp(name: string, port: number) {
  return Bun.serve({
    hostname: "127.0.0.1",
    port,
    fetch(req) {
      const url = new URL(req.url);
      return Response.json({
        service: name,
        path: url.pathname + url.search,
        caller: JSON.parse(req.headers.get("x-cse-context") ?? "{}")["x-cse-src-microservice"] ?? null,
        forwardedHost: req.headers.get("x-forwarded-host"),
      });
    },
  });
}

if (import.meta.main) {
  const name = process.env.NAME ?? "shop";
  const server = startApp(name, Number(process.env.PORT ?? 8201));
  console.log(`${name} on 127.0.0.1:${server.port}`);
}
