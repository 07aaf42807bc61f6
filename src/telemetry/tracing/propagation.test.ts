import { describe, expect, test } from "bun:test";
import { extract, formatOtSpanContext, formatSw8, hasContext, inject, parseOtSpanContext, parseSw8 } from "./propagation.ts";

const T = "4bf92f3577b34da6a3ce929d0e0e4736";
const S = "00f067aa0ba902b7";

describe("extract", () => {
  test("nothing to read: undefined, without parsing", () => {
    expect(hasContext(new Headers({ "x-request-id": "r" }))).toBe(false);
    expect(extract(new Headers({ "x-request-id": "r" }))).toBeUndefined();
  });

  test("W3C traceparent + tracestate", () => {
    const i = extract(new Headers({ traceparent: `00-${T}-${S}-01`, tracestate: "a=1,b=2" }))!;
    expect(i).toMatchObject({ traceId: T, spanId: S, sampled: true });
    expect(i.traceState?.serialize()).toBe("a=1,b=2");
    expect(extract(new Headers({ traceparent: `00-${T}-${S}-00` }))!.sampled).toBe(false);
  });

  test("an invalid traceparent is ignored (and B3 read instead)", () => {
    const i = extract(new Headers({ traceparent: `00-${"0".repeat(32)}-${S}-01`, "x-b3-traceid": T, "x-b3-spanid": S, "x-b3-sampled": "1" }))!;
    expect(i.traceId).toBe(T);
  });

  test("B3 multi: 64-bit trace ids are padded, a missing Sampled defers", () => {
    const i = extract(new Headers({ "x-b3-traceid": "a3ce929d0e0e4736", "x-b3-spanid": S }))!;
    expect(i.traceId).toBe("0000000000000000a3ce929d0e0e4736");
    expect(i.sampled).toBeUndefined();
    expect(extract(new Headers({ "x-b3-traceid": T, "x-b3-spanid": S, "x-b3-sampled": "0" }))!.sampled).toBe(false);
    const debug = extract(new Headers({ "x-b3-traceid": T, "x-b3-spanid": S, "x-b3-flags": "1" }))!;
    expect(debug).toMatchObject({ sampled: true, debug: true });
  });

  test("B3 single wins over multi", () => {
    const other = "1".repeat(32);
    const i = extract(new Headers({ b3: `${T}-${S}-1`, "x-b3-traceid": other, "x-b3-spanid": S }))!;
    expect(i).toMatchObject({ traceId: T, sampled: true, b3Single: true });
    expect(extract(new Headers({ b3: `${T}-${S}` }))!.sampled).toBeUndefined();
  });

  test("bare deny: b3: 0 and x-b3-sampled: 0", () => {
    const deny = extract(new Headers({ b3: "0" }))!;
    expect(deny.sampled).toBe(false);
    expect(deny.traceId).toBeUndefined();
    expect(extract(new Headers({ "x-b3-sampled": "0" }))).toMatchObject({ sampled: false });
  });

  test("sw8 alone: a hex trace id is kept, a foreign one hashed to a stable one", () => {
    const sw = { sampled: true, traceId: T, segmentId: S, spanId: 0, service: "a", instance: "i", endpoint: "/x", peer: "b:80" };
    expect(extract(new Headers({ sw8: formatSw8(sw) }))).toMatchObject({ traceId: T, spanId: S, sampled: true, sw });
    const foreign = { ...sw, traceId: "agent.trace.1", segmentId: "agent.seg.1", spanId: 2 };
    const a = extract(new Headers({ sw8: formatSw8(foreign) }))!;
    const b = extract(new Headers({ sw8: formatSw8(foreign) }))!;
    expect(a.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(a.traceId).toBe(b.traceId!);
    expect(a.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(a.sw!.traceId).toBe("agent.trace.1");
  });

  test("x-ot-span-context (LightStep binary carrier, hex)", () => {
    const value = formatOtSpanContext(T, S);
    expect(parseOtSpanContext(value)).toEqual({ traceId: `0000000000000000${T.slice(16)}`, spanId: S, sampled: true });
    expect(extract(new Headers({ "x-ot-span-context": value }))).toMatchObject({ spanId: S, sampled: true, otSpanContext: true });
    expect(parseOtSpanContext("zz")).toBeUndefined();
    expect(parseOtSpanContext("1200")).toBeUndefined();
  });
});

describe("sw8", () => {
  test("round trip; standard base64; malformed values are refused", () => {
    const p = { sampled: true, traceId: "t?>", segmentId: "s", spanId: 3, service: "服务", instance: "i", endpoint: "/a?b", peer: "h:1" };
    const text = formatSw8(p);
    expect(text.split("-")).toHaveLength(8);
    expect(parseSw8(text)).toEqual(p);
    expect(parseSw8("1-dA==-cw==")).toBeUndefined();
    expect(parseSw8("2-dA==-cw==-0-YQ==-aQ==-ZQ==-cA==")).toBeUndefined();
  });
});

describe("inject", () => {
  test("writes traceparent and B3 multi; rewrites b3 single and x-ot-span-context only when they came in", () => {
    const h = new Headers({ b3: `${T}-${S}-1`, "x-request-id": "r", "x-trace-service": "svc" });
    const incoming = extract(h);
    inject(h, { traceId: T, spanId: "1111111111111111", parentSpanId: S }, incoming);
    expect(h.get("traceparent")).toBe(`00-${T}-1111111111111111-01`);
    expect(h.get("x-b3-traceid")).toBe(T);
    expect(h.get("x-b3-spanid")).toBe("1111111111111111");
    expect(h.get("x-b3-parentspanid")).toBe(S);
    expect(h.get("x-b3-sampled")).toBe("1");
    expect(h.get("b3")).toBe(`${T}-1111111111111111-1`);
    expect(h.has("x-ot-span-context")).toBe(false);
    expect(h.has("sw8")).toBe(false);
    expect(h.get("x-request-id")).toBe("r");
    expect(h.get("x-trace-service")).toBe("svc");
  });

  test("a root drops stale parent ids and tracestate", () => {
    const h = new Headers({ "x-b3-parentspanid": S, tracestate: "a=1" });
    inject(h, { traceId: T, spanId: S }, undefined);
    expect(h.has("x-b3-parentspanid")).toBe(false);
    expect(h.has("tracestate")).toBe(false);
  });
});
