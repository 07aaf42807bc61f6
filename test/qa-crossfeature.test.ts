/**
 * Features combined the way a user combines them: edge mode with tracing, egress with the
 * access log, ... Each block is one combination the per-feature tests do not cover.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
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
