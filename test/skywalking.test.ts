import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ALL_TRACE_HEADERS, TSF_HEADERS } from "../recipes/tsf-demo/app.ts";
import { startTsfDemo, type TsfDemo } from "../recipes/tsf-demo/topology.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import { startMesher } from "../src/server.ts";
import type { SegmentObject } from "../src/telemetry/skywalking/segment.ts";
import { formatSw8 } from "../src/telemetry/tracing/propagation.ts";
import { startSkyWalkingReceiver, type SkyWalkingReceiver } from "./receivers/skywalking.ts";

const summary = (s: SegmentObject) => `${s.service}:${s.spans[0]!.spanType === 0 ? "Entry" : "Exit"}`;

/** Segments ordered by their references, root first. */
function ordered(segments: SegmentObject[]): SegmentObject[] {
  const byId = new Map(segments.map((s) => [s.traceSegmentId, s]));
  const root = segments.find((s) => !s.spans[0]!.refs.some((r) => byId.has(r.parentTraceSegmentId)))!;
  const out = [root];
  for (;;) {
    const last = out[out.length - 1]!;
    const next = segments.find((s) => s.spans[0]!.refs.some((r) => r.parentTraceSegmentId === last.traceSegmentId));
    if (!next) return out;
    out.push(next);
  }
}

for (const [label, copy] of [
  ["apps copy sw8 too", ALL_TRACE_HEADERS],
  ["apps copy only the TSF nine (no sw8)", TSF_HEADERS],
] as const) {
  describe(`SkyWalking segments across user -> shop -> promotion (${label})`, () => {
    let oap: SkyWalkingReceiver;
    let demo: TsfDemo;
    beforeAll(async () => {
      oap = await startSkyWalkingReceiver();
      demo = startTsfDemo({ skywalking: oap.address, copy });
    });
    afterAll(async () => {
      await demo.stop();
      await oap.stop();
    });

    test("each sidecar registers its instance and keeps it alive", async () => {
      await oap.waitFor((r) => r.pings.length >= 3 && r.properties.length >= 3);
      expect(new Set(oap.properties.map((p) => p.service))).toEqual(new Set(["user", "shop", "promotion"]));
      const user = oap.properties.find((p) => p.service === "user")!;
      expect(user.serviceInstance).toBe(demo.sidecars.user.runtime.id);
      expect(user.properties.find((p) => p.key === "language")?.value).toBe("typescript");
    });

    test("one request gives five segments of one trace, linked by references", async () => {
      const res = await demo.call();
      expect(res.status).toBe(200);
      await oap.waitFor((r) => r.segments.length >= 5);
      const segs = oap.segments;
      expect(new Set(segs.map((s) => s.traceId)).size).toBe(1);
      const chain = ordered(segs);
      expect(chain.map(summary)).toEqual(["user:Entry", "user:Exit", "shop:Entry", "shop:Exit", "promotion:Entry"]);
      const [userIn, userOut, shopIn, shopOut, promoIn] = chain.map((s) => s.spans[0]!);
      expect(userIn!.refs).toEqual([]);
      expect(userIn!.operationName).toBe("GET:/api/v6/user/create");
      expect(userIn!.componentId).toBe(49);
      expect(userIn!.spanLayer).toBe(3);
      // The consumer hop continues the provider hop inside the same instance...
      expect(userOut!.refs[0]!.refType).toBe(1);
      expect(userOut!.peer).toBe("shop");
      expect(userOut!.tags.find((t) => t.key === "mesher.endpoint")?.value).toBe(demo.sidecars.shop.addresses.provider!);
      // ...and the next service's entry crosses processes from it.
      const ref = shopIn!.refs[0]!;
      expect(ref.refType).toBe(0);
      expect(ref.parentTraceSegmentId).toBe(chain[1]!.traceSegmentId);
      expect(ref.parentSpanId).toBe(0);
      expect(ref.parentService).toBe("user");
      expect(shopOut!.peer).toBe("promotion");
      expect(promoIn!.refs[0]!.parentService).toBe("shop");
      if (copy === ALL_TRACE_HEADERS) {
        // With sw8 the reference is complete: instance, endpoint and the address used.
        expect(ref.parentServiceInstance).toBe(demo.sidecars.user.runtime.id);
        expect(ref.parentEndpoint).toBe("GET:/api/v6/user/create");
        expect(ref.networkAddressUsedAtPeer).toBe("shop");
      }
      for (const s of chain) expect(s.spans[0]!.endTime).toBeGreaterThanOrEqual(s.spans[0]!.startTime);
    });
  });
}

test("keep-alive repeats at the configured interval", async () => {
  const oap = await startSkyWalkingReceiver();
  const m = startMesher(resolveConfig({ service: { name: "solo" }, listen: { consumer: "127.0.0.1:0", admin: false }, tracing: { skywalking: { serverUri: oap.address, keepAlive: "50ms" } } }));
  try {
    await oap.waitFor((r) => r.pings.filter((p) => p.service === "solo").length >= 3);
    expect(oap.properties.filter((p) => p.service === "solo")).toHaveLength(1);
  } finally {
    await m.stop();
    await oap.stop();
  }
});

test("a SkyWalking agent's sw8 is continued with its own trace id", async () => {
  const oap = await startSkyWalkingReceiver();
  const demo = startTsfDemo({ skywalking: oap.address, copy: ALL_TRACE_HEADERS });
  try {
    const sw8 = formatSw8({
      sampled: true,
      traceId: "a1b2c3.45.16630000000000001",
      segmentId: "a1b2c3.45.16630000000000002",
      spanId: 3,
      service: "gateway",
      instance: "gw-1@host",
      endpoint: "/entry",
      peer: "user:80",
    });
    const res = await demo.call({ sw8, "sw8-correlation": "a2V5:dmFsdWU=" });
    expect(res.status).toBe(200);
    await oap.waitFor((r) => r.segments.length >= 5);
    expect(oap.segments.every((s) => s.traceId === "a1b2c3.45.16630000000000001")).toBe(true);
    const userIn = oap.segments.find((s) => s.service === "user" && s.spans[0]!.spanType === 0)!;
    expect(userIn.spans[0]!.refs[0]).toMatchObject({
      refType: 0,
      parentTraceSegmentId: "a1b2c3.45.16630000000000002",
      parentSpanId: 3,
      parentService: "gateway",
      parentServiceInstance: "gw-1@host",
      parentEndpoint: "/entry",
      networkAddressUsedAtPeer: "user:80",
    });
  } finally {
    await demo.stop();
    await oap.stop();
  }
});
