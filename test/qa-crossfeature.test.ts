/**
 * Features combined the way a user combines them: edge mode with tracing, egress with the
 * access log, ... Each block is one combination the per-feature tests do not cover.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { startEchoApp, startSidecar } from "./helpers.ts";
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
