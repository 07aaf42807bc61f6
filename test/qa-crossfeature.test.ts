/**
 * Features combined the way a user combines them: edge mode with tracing, egress with the
 * access log, ... Each block is one combination the per-feature tests do not cover.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { resolveConfig } from "../src/config/resolve.ts";
import { echoClient, startGrpcApp, unary } from "./grpcApp.ts";
import { closedPort, curl, startApp, startEchoApp, startSidecar, tempDir, twoSidecars, viaProxy } from "./helpers.ts";
import { startOtlpReceiver } from "./receivers/otlp.ts";

describe("edge mode + tracing", async () => {
  const otlp = await startOtlpReceiver();
  const shop = startEchoApp("shop");
  const shopSidecar = startSidecar({
    service: { name: "shop", ports: { http: shop.port! } },
    listen: { provider: "127.0.0.1:0" },
    tracing: { otlp: { endpoint: otlp.url }, flushInterval: "100ms" },
  });
  const gw = startSidecar({
    mode: "edge",
    service: { name: "gateway" },
    listen: { edge: "127.0.0.1:0" },
    services: { shop: { endpoints: [shopSidecar.addresses.provider!] } },
    ingress: [{ path: { prefix: "/shop/" }, rewrite: { prefix: "/" }, service: "shop" }],
    tracing: { otlp: { endpoint: otlp.url }, flushInterval: "100ms" },
  });
  afterAll(async () => {
    await gw.stop();
    await shopSidecar.stop();
    shop.stop(true);
    await otlp.stop();
  });

  test("the edge hop is a span naming the service the ingress rule chose, parent of the service's span", async () => {
    const res = await fetch(`http://${gw.addresses.edge}/shop/cart`);
    expect(res.status).toBe(200);
    const spans = await otlp.waitFor((s) => s.length >= 2);
    const edge = spans.find((s) => s.service === "gateway")!;
    const provider = spans.find((s) => s.service === "shop")!;
    expect(edge).toBeDefined();
    expect(provider.traceId).toBe(edge.traceId);
    expect(provider.parentSpanId).toBe(edge.spanId);
    expect(edge.kind).toBe("SPAN_KIND_CLIENT");
    expect(edge.name).toBe("GET shop");
    expect(edge.attributes["server.address"]).toBe("shop");
    expect(edge.attributes["url.path"]).toBe("/shop/cart"); // the path as the client sent it
    expect(edge.attributes["mesher.cluster"]).toBe("shop");
    expect(edge.attributes["mesher.endpoint"]).toBe(shopSidecar.addresses.provider!);
    expect(edge.attributes["http.response.status_code"]).toBe(200);
  });

  test("no ingress rule: a 404 no_route span", async () => {
    const res = await fetch(`http://${gw.addresses.edge}/nowhere`, { headers: { "x-client-trace-id": "t1" } });
    expect(res.status).toBe(404);
    expect(res.headers.get("x-mesher-error")).toBe("no_route");
    const spans = await otlp.waitFor((s) => s.some((x) => x.attributes["mesher.error_code"] === "no_route"));
    const span = spans.find((x) => x.attributes["mesher.error_code"] === "no_route")!;
    expect(span.attributes["http.response.status_code"]).toBe(404);
    expect(span.status).toBe("STATUS_CODE_ERROR");
  });
});

describe("egress CONNECT tunnels + access log + metrics (node:http engine) + an upload in the same config", async () => {
  const dir = tempDir();
  const path = join(dir, "access.log");
  const external = startEchoApp("external"); // plain TCP behind the tunnel is enough
  const app = startApp(async (req) => Response.json({ got: (await req.arrayBuffer()).byteLength }));
  const closed = closedPort();
  const mesh = twoSidecars(app.port!, {
    a: {
      accessLog: { path },
      listen: { consumer: "127.0.0.1:0", admin: "127.0.0.1:0" },
      egress: [{ name: "ext", hosts: ["localhost"], ports: [{ port: external.port!, protocol: "TCP" }, { port: closed, protocol: "TCP" }] }],
    },
  });
  afterAll(async () => {
    await mesh.stop();
    external.stop(true);
    app.stop(true);
  });

  const logLines = async (n: number) => {
    for (let i = 0; i < 200; i++) {
      await mesh.a.runtime.telemetry.flush();
      const text = existsSync(path) ? readFileSync(path, "utf8").trim() : "";
      const lines = text ? text.split("\n").map((l) => JSON.parse(l)) : [];
      if (lines.length >= n) return lines;
      await Bun.sleep(25);
    }
    throw new Error(`fewer than ${n} access log lines`);
  };

  test("allowed, refused and failed tunnels each leave an access log line and a metric", async () => {
    const ok = await curl(["-s", "-p", "-x", mesh.proxy, `http://localhost:${external.port}/through`]);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).path).toBe("/through");
    const refused = await curl(["-s", "-p", "-x", mesh.proxy, `http://127.0.0.1:${external.port}/`]);
    expect(refused.status).not.toBe(200);
    const failed = await curl(["-s", "-p", "-x", mesh.proxy, `http://localhost:${closed}/`]);
    expect(failed.status).not.toBe(200);
    const lines = await logLines(3);
    expect(lines[0]).toMatchObject({ direction: "consumer", method: "CONNECT", path: `localhost:${external.port}`, response_code: 200, response_flags: null, service: "localhost", route: "egress:ext", upstream_host: `localhost:${external.port}`, downstream_remote_address: "127.0.0.1" });
    expect(lines[1]).toMatchObject({ method: "CONNECT", path: `127.0.0.1:${external.port}`, response_code: 403, response_flags: "forbidden", upstream_host: null });
    expect(lines[2]).toMatchObject({ method: "CONNECT", path: `localhost:${closed}`, response_code: 502, response_flags: "upstream_connect_failure", upstream_host: `localhost:${closed}` });
    const metrics = await (await fetch(`http://${mesh.a.addresses.admin}/v1/mesher/metrics`)).text();
    expect(metrics).toMatch(/mesher_requests_total\{[^}]*service="localhost"[^}]*status_class="2xx"[^}]*\} 1/);
    expect(metrics).toMatch(/mesher_requests_total\{[^}]*error_code="forbidden"[^}]*\} 1/);
  });

  test("a 5 MB POST upload through the same (CONNECT-serving) consumer listener arrives whole", async () => {
    const body = new Uint8Array(5 * 1024 * 1024).fill(7);
    const res = await viaProxy(mesh.proxy, "http://promotion/upload", { method: "POST", body });
    expect(res.status).toBe(200);
    expect((await res.json()).got).toBe(body.byteLength);
  });
});

test("a CONNECT refused by the Bun.serve engine (no rule could allow a tunnel) is logged too", async () => {
  const dir = tempDir();
  const path = join(dir, "access.log");
  const sidecar = startSidecar({ service: { name: "shop" }, listen: { consumer: "127.0.0.1:0" }, accessLog: { path }, egress: [{ hosts: ["api.example.com"], ports: [{ port: 80, protocol: "HTTP" }] }] });
  try {
    const r = await curl(["-s", "-p", "-x", `http://${sidecar.addresses.consumer}`, "http://api.example.com:443/"]);
    expect(r.status).not.toBe(200);
  } finally {
    await sidecar.stop(); // flushes the log
  }
  const line = JSON.parse(readFileSync(path, "utf8").trim());
  expect(line).toMatchObject({ method: "CONNECT", path: "api.example.com:443", response_code: 403, response_flags: "forbidden", service: "api.example.com" });
});

describe("WebSocket through the edge with a rate limit", () => {
  const app = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req, server) {
      if (new URL(req.url).pathname === "/refuse") return new Response("no", { status: 401 });
      if (server.upgrade(req)) return undefined;
      return new Response("plain");
    },
    websocket: { message: (ws, m) => void ws.send(m) },
  });
  const gw = startSidecar({
    mode: "edge",
    service: { name: "gateway" },
    listen: { edge: "127.0.0.1:0", consumer: false },
    services: {
      chat: { endpoints: [`127.0.0.1:${app.port}`], rateLimit: { rate: 2, burst: 2 } },
      plain: { endpoints: [`127.0.0.1:${app.port}`] },
    },
    ingress: [
      { path: { prefix: "/chat/" }, rewrite: { prefix: "/" }, service: "chat" },
      { path: { prefix: "/plain/" }, rewrite: { prefix: "/" }, service: "plain" },
    ],
  });
  afterAll(async () => {
    await gw.stop();
    app.stop(true);
  });
  const upgrade = (path: string) =>
    curl(["-s", "--max-time", "5", "-i", "-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13", "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", `http://${gw.addresses.edge}${path}`]);

  test("upgrades within the limit echo; beyond it 429 rate_limited JSON", async () => {
    const sockets: WebSocket[] = [];
    for (let i = 0; i < 2; i++) {
      const ws = new WebSocket(`ws://${gw.addresses.edge}/chat/ws`);
      await new Promise<void>((resolve, reject) => {
        ws.onopen = () => resolve();
        ws.onerror = () => reject(new Error("WebSocket failed to open"));
      });
      const echoed = new Promise<string>((resolve) => (ws.onmessage = (e) => resolve(String(e.data))));
      ws.send(`hi ${i}`);
      expect(await echoed).toBe(`hi ${i}`);
      sockets.push(ws);
    }
    const limited = await upgrade("/chat/ws");
    expect(limited.status).toBe(429);
    expect(limited.body).toContain("x-mesher-error: rate_limited");
    expect(limited.body).toContain('"code":"rate_limited"');
    // The open sockets still work after the refusal.
    const again = new Promise<string>((resolve) => (sockets[0]!.onmessage = (e) => resolve(String(e.data))));
    sockets[0]!.send("still");
    expect(await again).toBe("still");
    for (const ws of sockets) ws.close();
  });

  test("an upstream refusing the upgrade: a JSON error with x-mesher-error, no hang", async () => {
    const r = await upgrade("/plain/refuse");
    expect(r.status).toBe(502);
    expect(r.body).toContain("x-mesher-error: upstream_connect_failure");
    expect(r.body).toContain('"code":"upstream_connect_failure"');
  });
});

describe("hot reload of the access log format and the tracing sampler", () => {
  test("a reload switching JSON to a format string keeps every line, in order, in the same file", async () => {
    const dir = tempDir();
    const path = join(dir, "access.log");
    const app = startEchoApp();
    const mesh = twoSidecars(app.port!, { a: { accessLog: { path } } });
    try {
      for (let i = 0; i < 3; i++) expect((await viaProxy(mesh.proxy, `http://promotion/json${i}`)).status).toBe(200);
      const config = mesh.a.runtime.pipeline.config;
      mesh.a.reload(resolveConfig({ ...config, listen: { ...config.listen }, accessLog: { path, format: "%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %REQ(:AUTHORITY)%" } }));
      for (let i = 0; i < 3; i++) expect((await viaProxy(mesh.proxy, `http://promotion/text${i}`)).status).toBe(200);
    } finally {
      await mesh.stop();
      app.stop(true);
    }
    const lines = readFileSync(path, "utf8").trim().split("\n");
    expect(lines.slice(0, 3).map((l) => JSON.parse(l).path)).toEqual(["/json0", "/json1", "/json2"]);
    expect(lines.slice(3)).toEqual(["GET /text0 200 promotion", "GET /text1 200 promotion", "GET /text2 200 promotion"]);
  });

  test("a reload setting sampler 0 stops new traces; back to 1 starts them again", async () => {
    const otlp = await startOtlpReceiver();
    const app = startEchoApp();
    const tracing = { flushInterval: 50, otlp: { endpoint: otlp.url } };
    const mesh = twoSidecars(app.port!, { a: { tracing } });
    try {
      const config = mesh.a.runtime.pipeline.config;
      const withSampler = (sampler: number) => resolveConfig({ ...config, listen: { ...config.listen }, tracing: { ...tracing, sampler } });
      expect((await viaProxy(mesh.proxy, "http://promotion/one")).status).toBe(200);
      await otlp.waitFor((s) => s.length === 1);
      mesh.a.reload(withSampler(0));
      const off = await viaProxy(mesh.proxy, "http://promotion/off");
      expect(((await off.json()) as { headers: Record<string, string> }).headers["x-b3-sampled"]).toBe("0");
      mesh.a.reload(withSampler(1));
      expect((await viaProxy(mesh.proxy, "http://promotion/two")).status).toBe(200);
      const spans = await otlp.waitFor((s) => s.length >= 2);
      expect(spans.map((s) => s.attributes["url.path"])).toEqual(["/one", "/two"]);
    } finally {
      await mesh.stop();
      app.stop(true);
      await otlp.stop();
    }
  });
});

describe("etcd registry unreachable from the start", () => {
  const sidecar = startSidecar({
    service: { name: "web" },
    listen: { consumer: "127.0.0.1:0", admin: "127.0.0.1:0" },
    registry: { kind: "etcd", endpoints: [`http://127.0.0.1:${closedPort()}`], lookupTimeout: "5s" },
  });
  afterAll(() => sidecar.stop());

  test("a call to a service only the registry could know is 503 registry_unavailable, not 403", async () => {
    const res = await viaProxy(`http://${sidecar.addresses.consumer}`, "http://shop/x");
    expect(res.status).toBe(503);
    expect(res.headers.get("x-mesher-error")).toBe("registry_unavailable");
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("registry_unavailable");
    expect(body.error.message).toContain("etcd");
    const clusters = (await (await fetch(`http://${sidecar.addresses.admin}/clusters`)).json()) as { registry: { stale: boolean } };
    expect(clusters.registry.stale).toBe(true);
  });

  test("the go-micro registry API answers its JSON error with x-mesher-error", async () => {
    const res = await fetch(`http://${sidecar.addresses.admin}/registry?service=shop`);
    expect(res.status).toBe(502);
    expect(res.headers.get("x-mesher-error")).toBe("registry_unavailable");
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("registry_unavailable");
  });
});

describe("stats page and metrics with gRPC traffic", async () => {
  const app = await startGrpcApp("greeter");
  const b = startSidecar({ service: { name: "greeter", ports: { grpc: app.port } }, listen: { grpcProvider: "127.0.0.1:0" } });
  const a = startSidecar({
    service: { name: "shop" },
    listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" },
    services: { greeter: { grpcEndpoints: [b.addresses.grpcProvider!] } },
  });
  const client = echoClient(a.addresses.grpc!, "greeter");
  afterAll(async () => {
    client.close();
    await a.stop();
    await b.stop();
    app.stop();
  });

  test("/stats JSON counts gRPC calls and errors per service, and lists the gRPC endpoint", async () => {
    for (let i = 0; i < 3; i++) expect((await unary(client, { text: "ok" })).err).toBeUndefined();
    const failed = await unary(client, { text: "bad", failCode: grpc.status.UNAVAILABLE });
    expect(failed.err?.code).toBe(grpc.status.UNAVAILABLE);
    const stats = (await (await fetch(`http://${a.addresses.admin}/stats`, { headers: { accept: "application/json" } })).json()) as {
      services: { service: string; direction: string; requests: number; errors: number }[];
      clusters: { name: string; endpoints: { address: string; state: string }[] }[];
    };
    const greeter = stats.services.find((s) => s.service === "greeter" && s.direction === "consumer")!;
    expect(greeter).toBeDefined();
    expect(greeter).toMatchObject({ requests: 4, errors: 1 });
    const cluster = stats.clusters.find((c) => c.name === "grpc:greeter")!;
    expect(cluster.endpoints[0]).toMatchObject({ address: b.addresses.grpcProvider, state: "UP" });
    const metrics = await (await fetch(`http://${a.addresses.admin}/v1/mesher/metrics`)).text();
    expect(metrics).toMatch(/mesher_requests_total\{[^}]*service="greeter"[^}]*status_class="2xx"[^}]*\} 3/);
    expect(metrics).toMatch(/mesher_requests_total\{[^}]*service="greeter"[^}]*status_class="5xx"[^}]*\} 1/);
  });
});

describe("a service from the file registry + route rules by the instances' registry tags", () => {
  const v1 = startEchoApp("shop-v1");
  const v2 = startEchoApp("shop-v2");
  const dir = tempDir({
    "registry.yaml": [
      "services:",
      "  shop:",
      `    - { id: shop-1, address: "127.0.0.1:${v1.port}", tags: { version: "1.0" } }`,
      `    - { id: shop-2, address: "127.0.0.1:${v2.port}", tags: { version: "2.0" } }`,
      "",
    ].join("\n"),
  });
  const sidecar = startSidecar({
    service: { name: "web" },
    listen: { consumer: "127.0.0.1:0" },
    registry: { kind: "file", path: join(dir, "registry.yaml") },
    services: {
      shop: {
        routes: [
          { precedence: 2, match: { headers: { "x-canary": { exact: "yes" } } }, route: [{ tags: { version: "2.0" } }] },
          { precedence: 1, route: [{ tags: { version: "1.0" } }] },
        ],
      },
    },
  });
  afterAll(async () => {
    await sidecar.stop();
    v1.stop(true);
    v2.stop(true);
  });
  const served = async (headers: Record<string, string> = {}) => {
    const res = await viaProxy(`http://${sidecar.addresses.consumer}`, "http://shop/items", { headers });
    expect(res.status).toBe(200);
    return ((await res.json()) as { app: string }).app;
  };

  test("the header rule picks the 2.0 instance, the rest goes to 1.0, by the tags the registry holds", async () => {
    for (let i = 0; i < 50 && sidecar.clusters.get("shop")?.endpoints.length !== 2; i++) await Bun.sleep(20);
    expect(sidecar.clusters.get("shop")?.endpoints.length).toBe(2);
    for (let i = 0; i < 4; i++) {
      expect(await served()).toBe("shop-v1");
      expect(await served({ "x-canary": "yes" })).toBe("shop-v2");
    }
  });

  test("tags changed in the registry re-route the next calls", async () => {
    writeFileSync(
      join(dir, "registry.yaml"),
      [
        "services:",
        "  shop:",
        `    - { id: shop-1, address: "127.0.0.1:${v1.port}", tags: { version: "2.0" } }`,
        `    - { id: shop-2, address: "127.0.0.1:${v2.port}", tags: { version: "1.0" } }`,
        "",
      ].join("\n"),
    );
    const first = () => sidecar.clusters.get("shop")?.endpoints.find((e) => e.address === `127.0.0.1:${v1.port}`)?.tags.version;
    for (let i = 0; i < 250 && first() !== "2.0"; i++) await Bun.sleep(20);
    expect(first()).toBe("2.0");
    for (let i = 0; i < 4; i++) {
      expect(await served()).toBe("shop-v2");
      expect(await served({ "x-canary": "yes" })).toBe("shop-v1");
    }
  });
});

describe("gRPC + discovery: a greeter sidecar registers its grpcProvider address; the caller's gRPC listener finds it", async () => {
  const app = await startGrpcApp("greeter");
  const dir = tempDir();
  const registry = { kind: "file" as const, path: join(dir, "registry.yaml") };
  const b = startSidecar({
    service: { name: "greeter", ports: { http: closedPort(), grpc: app.port } },
    listen: { provider: "127.0.0.1:0", grpcProvider: "127.0.0.1:0" },
    registry,
  });
  const a = startSidecar({ service: { name: "shop" }, listen: { grpc: "127.0.0.1:0" }, registry, services: { greeter: {} } });
  const client = echoClient(a.addresses.grpc!, "greeter");
  afterAll(async () => {
    client.close();
    await a.stop();
    await b.stop();
    app.stop();
  });

  test("a unary call reaches the app through the discovered gRPC endpoint", async () => {
    for (let i = 0; i < 250 && !a.clusters.get("grpc:greeter")?.endpoints.length; i++) await Bun.sleep(20);
    expect(a.clusters.get("grpc:greeter")?.endpoints.map((e) => e.address)).toEqual([b.addresses.grpcProvider!]);
    const { reply, err } = await unary(client, { text: "found" });
    expect(err).toBeUndefined();
    expect(reply!.text).toBe("found");
    expect(reply!.caller).toBe("shop");
  });

  test("a service the caller's config does not name is looked up in the registry on the first call", async () => {
    const c = startSidecar({ service: { name: "cart" }, listen: { grpc: "127.0.0.1:0" }, registry });
    const dynamic = echoClient(c.addresses.grpc!, "greeter");
    try {
      const { reply, err } = await unary(dynamic, { text: "looked up" });
      expect(err).toBeUndefined();
      expect(reply!.text).toBe("looked up");
      const nosuch = echoClient(c.addresses.grpc!, "nosuch");
      const unknown = await unary(nosuch, { text: "x" });
      nosuch.close();
      expect(unknown.err?.code).toBe(grpc.status.UNIMPLEMENTED);
    } finally {
      dynamic.close();
      await c.stop();
    }
  });
});

describe("WebSocket + access log", () => {
  for (const connect of [false, true]) {
    test(`an upgrade is logged as 101 with one attempt (consumer on ${connect ? "node:http" : "Bun.serve"})`, async () => {
      const app = Bun.serve({
        hostname: "127.0.0.1",
        port: 0,
        fetch: (req, server) => (server.upgrade(req) ? undefined : new Response("plain")),
        websocket: { message: (ws, m) => void ws.send(m) },
      });
      const path = join(tempDir(), "access.log");
      const mesh = twoSidecars(app.port!, { a: { accessLog: { path }, listen: { consumer: "127.0.0.1:0", connect } } });
      try {
        const ws = new WebSocket(`ws://${mesh.a.addresses.consumer}/echo`, { headers: { host: "promotion" } } as unknown as string[]);
        await new Promise<void>((resolve, reject) => {
          ws.onopen = () => resolve();
          ws.onerror = () => reject(new Error("WebSocket failed to open"));
        });
        const echoed = new Promise<string>((resolve) => (ws.onmessage = (e) => resolve(String(e.data))));
        ws.send("hi");
        expect(await echoed).toBe("hi");
        ws.close();
      } finally {
        await mesh.stop();
        app.stop(true);
      }
      const line = JSON.parse(readFileSync(path, "utf8").trim());
      expect(line).toMatchObject({ method: "GET", path: "/echo", response_code: 101, response_flags: null, service: "promotion", attempts: 1, upstream_host: mesh.b.addresses.provider });
    });
  }
});
