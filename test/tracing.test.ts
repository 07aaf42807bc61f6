import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTsfDemo, type TsfDemo } from "../recipes/tsf-demo/topology.ts";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "./receivers/otlp.ts";

/** Spans of one trace ordered root first, each after its parent. */
function chain(spans: ReceivedSpan[]): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  let parent = "";
  for (;;) {
    const next = spans.filter((s) => s.parentSpanId === parent);
    if (next.length !== 1) break;
    out.push(next[0]!);
    parent = next[0]!.spanId;
  }
  return out;
}

describe("OTLP tracing across user -> shop -> promotion (apps copy the TSF demo's nine headers)", () => {
  let otlp: OtlpReceiver;
  let demo: TsfDemo;
  beforeAll(async () => {
    otlp = await startOtlpReceiver();
    demo = startTsfDemo({ otlp: otlp.url });
  });
  afterAll(async () => {
    await demo.stop();
    await otlp.stop();
  });

  test("one request gives one trace of five spans chained through every sidecar", async () => {
    const res = await demo.call();
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.result.result.service).toBe("promotion");
    const spans = await otlp.waitFor((s) => s.length >= 5);
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
    const c = chain(spans);
    expect(c.map((s) => `${s.service}:${s.kind}`)).toEqual([
      "user:SPAN_KIND_SERVER",
      "user:SPAN_KIND_CLIENT",
      "shop:SPAN_KIND_SERVER",
      "shop:SPAN_KIND_CLIENT",
      "promotion:SPAN_KIND_SERVER",
    ]);
    const [userIn, userOut, shopIn] = c;
    expect(userIn!.attributes["http.request.method"]).toBe("GET");
    expect(userIn!.attributes["url.path"]).toBe("/api/v6/user/create");
    expect(userIn!.attributes["http.response.status_code"]).toBe(200);
    expect(userOut!.attributes["server.address"]).toBe("shop");
    expect(userOut!.attributes["mesher.cluster"]).toBe("shop");
    expect(userOut!.attributes["mesher.route"]).toBe("default");
    expect(userOut!.attributes["mesher.endpoint"]).toBe(demo.sidecars.shop.addresses.provider!);
    expect(userOut!.attributes["mesher.attempts"]).toBe(1);
    expect(userOut!.attributes["mesher.retries"]).toBe(0);
    expect(userOut!.attributes["url.path"]).toBe("/api/v6/shop/items");
    expect(shopIn!.attributes["mesher.source_service"]).toBe("user");
    expect(typeof userIn!.attributes["mesher.request_id"]).toBe("string");
    // x-request-id is generated once at the edge and flows unchanged (the apps copy it).
    expect(new Set(c.map((s) => s.attributes["mesher.request_id"])).size).toBe(1);
  });

  test("an incoming traceparent is continued; its trace id is kept", async () => {
    otlp.spans.length = 0;
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const res = await demo.call({ traceparent: `00-${traceId}-00f067aa0ba902b7-01`, "x-request-id": "req-1" });
    expect(res.status).toBe(200);
    const spans = await otlp.waitFor((s) => s.filter((x) => x.traceId === traceId).length >= 5);
    const mine = spans.filter((s) => s.traceId === traceId);
    const root = mine.find((s) => s.service === "user" && s.kind === "SPAN_KIND_SERVER")!;
    expect(root.parentSpanId).toBe("00f067aa0ba902b7");
    expect(mine.every((s) => s.attributes["mesher.request_id"] === "req-1")).toBe(true);
  });

  test("an error upstream shows as error.type and span status", async () => {
    otlp.spans.length = 0;
    await demo.sidecars.promotion.stop(); // shop's sidecar now cannot connect
    const res = await demo.call();
    expect(res.status).toBe(500);
    const spans = await otlp.waitFor((s) => s.some((x) => x.service === "shop" && x.kind === "SPAN_KIND_CLIENT"));
    const shopOut = spans.find((x) => x.service === "shop" && x.kind === "SPAN_KIND_CLIENT")!;
    expect(shopOut.attributes["mesher.error_code"]).toBe("upstream_connect_failure");
    expect(shopOut.attributes["error.type"]).toBe("upstream_connect_failure");
    expect(shopOut.attributes["http.response.status_code"]).toBe(502);
    expect(shopOut.status).toBe("STATUS_CODE_ERROR");
  });
});

describe("W3C-only apps: tracestate and the trace survive", () => {
  test("apps that copy traceparent/tracestate only still get one trace", async () => {
    const otlp = await startOtlpReceiver();
    const demo = startTsfDemo({ otlp: otlp.url, copy: ["traceparent", "tracestate"] });
    try {
      const traceId = "0af7651916cd43dd8448eb211c80319c";
      const res = await demo.call({ traceparent: `00-${traceId}-b7ad6b7169203331-01`, tracestate: "congo=t61rcWkgMzE" });
      expect(res.status).toBe(200);
      const spans = await otlp.waitFor((s) => s.length >= 5);
      expect(spans.every((s) => s.traceId === traceId)).toBe(true);
      expect(spans.every((s) => s.traceState === "congo=t61rcWkgMzE")).toBe(true);
      const c = chain(spans.map((s) => (s.parentSpanId === "b7ad6b7169203331" ? { ...s, parentSpanId: "" } : s)));
      expect(c.map((s) => s.service)).toEqual(["user", "user", "shop", "shop", "promotion"]);
    } finally {
      await demo.stop();
      await otlp.stop();
    }
  });
});
