import { describe, expect, test } from "bun:test";
import { extract } from "../telemetry/tracing/propagation.ts";
import { TRACE_DENY, TRACE_NO_REQUEST_ID, TRACE_PASS, TRACE_ASK, TRACE_SAMPLE, TraceHeaders, traceVerdict, requestSeqFor, UNTRACED_BOUND, writeUntraced } from "./fasttrace.ts";

const TID = "4bf92f3577b34da6a3ce929d0e0e4736";
const SID = "00f067aa0ba902b7";

/** Header lists as the fast path's parser gives them, and what the tracer would decide. */
const cases: [string, [string, string][], number][] = [
  ["no trace context", [], TRACE_DENY],
  ["unsampled traceparent", [["traceparent", `00-${TID}-${SID}-00`]], TRACE_PASS],
  ["sampled traceparent", [["traceparent", `00-${TID}-${SID}-01`]], TRACE_ASK],
  ["flags with other bits, unsampled", [["traceparent", `00-${TID}-${SID}-02`]], TRACE_PASS],
  ["all-zero trace id", [["traceparent", `00-${"0".repeat(32)}-${SID}-00`]], TRACE_ASK],
  ["upper-case hex", [["traceparent", `00-${TID.toUpperCase()}-${SID}-00`]], TRACE_ASK],
  ["another version", [["traceparent", `01-${TID}-${SID}-00`]], TRACE_ASK],
  ["repeated traceparent", [["traceparent", `00-${TID}-${SID}-00`], ["traceparent", `00-${TID}-${SID}-00`]], TRACE_ASK],
  ["b3 deny", [["b3", "0"]], TRACE_PASS],
  ["b3 with ids", [["b3", `${TID}-${SID}-0`]], TRACE_ASK],
  ["x-b3-sampled: 0 alone (mesher's own deny)", [["x-b3-sampled", "0"]], TRACE_PASS],
  ["x-b3-sampled: 1 alone", [["x-b3-sampled", "1"]], TRACE_ASK],
  ["B3 multi with ids", [["x-b3-traceid", TID], ["x-b3-spanid", SID], ["x-b3-sampled", "0"]], TRACE_ASK],
  ["unsampled traceparent beside B3", [["traceparent", `00-${TID}-${SID}-00`], ["x-b3-sampled", "1"]], TRACE_PASS],
  ["sw8", [["sw8", "1-abc-def-0-c2Vy-aW5z-ZXA-cGVlcg=="]], TRACE_ASK],
  ["forced", [["x-envoy-force-trace", "true"], ["traceparent", `00-${TID}-${SID}-00`]], TRACE_ASK],
  ["x-client-trace-id", [["x-client-trace-id", "abc"]], TRACE_ASK],
];

describe("traceVerdict", () => {
  for (const [name, list, verdict] of cases) {
    test(name, () => {
      const flat = list.flat();
      expect(traceVerdict(flat, 0) & 3).toBe(verdict === TRACE_DENY ? TRACE_DENY : verdict);
      // The tracer agrees: PASS is an incoming "no", DENY/SAMPLE a request without context.
      const h = new Headers(list);
      if (verdict === TRACE_PASS) expect(extract(h)?.sampled).toBe(false);
      if (verdict === TRACE_DENY) expect(extract(h)).toBeUndefined();
    });
  }

  test("new traces follow the sampler; a request id is asked for only when missing", () => {
    expect(traceVerdict([], 1)).toBe(TRACE_SAMPLE | TRACE_NO_REQUEST_ID);
    expect(traceVerdict([], 0)).toBe(TRACE_DENY | TRACE_NO_REQUEST_ID);
    expect(traceVerdict(["x-request-id", "r1"], 0)).toBe(TRACE_DENY);
    expect(traceVerdict(["x-request-id", "r1", "b3", "0"], 0.5)).toBe(TRACE_PASS);
    let sampled = 0;
    for (let i = 0; i < 20000; i++) if ((traceVerdict([], 0.1) & 3) === TRACE_SAMPLE) sampled++;
    expect(sampled).toBeGreaterThan(1600); // 2000 expected; 10 standard deviations are ~420
    expect(sampled).toBeLessThan(2400);
  });

  test("the fast path's trace header map reads and writes as Fetch Headers do, and the tracer extracts the same context from both", () => {
    const mine = new TraceHeaders();
    const fetch = new Headers();
    const ops: [string, string, string?][] = [
      ["append", "traceparent", `00-${TID}-${SID}-01`],
      ["append", "tracestate", "a=1"],
      ["append", "tracestate", "b=2"], // repeated: joined with ", "
      ["set", "x-b3-sampled", "0"],
      ["set", "x-b3-sampled", "1"], // replaced
      ["append", "x-request-id", "r1"],
      ["delete", "x-request-id"],
    ];
    for (const [op, name, value] of ops) {
      if (op === "delete") {
        mine.delete(name);
        fetch.delete(name);
      } else {
        mine[op as "append" | "set"](name, value!);
        fetch[op as "append" | "set"](name, value!);
      }
    }
    for (const name of ["traceparent", "tracestate", "x-b3-sampled", "x-request-id", "b3"]) {
      expect(mine.get(name)).toBe(fetch.get(name));
      expect(mine.has(name)).toBe(fetch.has(name));
    }
    const entries = (h: { forEach(cb: (v: string, n: string) => void): void }) => {
      const out: string[] = [];
      h.forEach((v, n) => out.push(`${n}=${v}`));
      return out.sort();
    };
    expect(entries(mine)).toEqual(entries(fetch));
    expect([...mine.keys()].sort()).toEqual([...fetch.keys()].sort());
    const a = extract(mine)!;
    const b = extract(fetch)!;
    expect(a.traceId).toBe(TID);
    expect({ ...a, traceState: a.traceState?.serialize() }).toEqual({ ...b, traceState: b.traceState?.serialize() });
  });
});

describe("writeUntraced", () => {
  const lines = (verdict: number, seq: number) => {
    const out = Buffer.alloc(UNTRACED_BOUND);
    return out.toString("latin1", 0, writeUntraced(out, 0, verdict, seq));
  };
  const ID = /^x-request-id: ([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})\r\n$/;

  test("a new trace not sampled gets x-b3-sampled: 0, and an x-request-id when it has none", () => {
    expect(lines(TRACE_DENY, 0)).toBe("x-b3-sampled: 0\r\n");
    const both = lines(TRACE_DENY | TRACE_NO_REQUEST_ID, 7);
    expect(both).toStartWith("x-b3-sampled: 0\r\nx-request-id: ");
    expect(both.length).toBe(UNTRACED_BOUND);
    expect(lines(TRACE_PASS, 0)).toBe("");
  });

  test("generated ids are version-4 UUIDs, one per sequence number, the same for the same number", () => {
    const ids = new Set<string>();
    for (const seq of [1, 2, 15, 16, 255, 2 ** 32 + 1, 2 ** 48 - 1]) {
      const m = ID.exec(lines(TRACE_PASS | TRACE_NO_REQUEST_ID, seq));
      expect(m).not.toBeNull();
      expect(m![1]!.slice(-12)).toBe(seq.toString(16).padStart(12, "0"));
      ids.add(m![1]!);
    }
    expect(ids.size).toBe(7);
    expect(lines(TRACE_NO_REQUEST_ID, 16)).toBe(lines(TRACE_NO_REQUEST_ID, 16));
  });

  test("a request without an x-request-id draws the next number; one with an id draws none", () => {
    const a = requestSeqFor(TRACE_DENY | TRACE_NO_REQUEST_ID);
    expect(requestSeqFor(TRACE_DENY)).toBe(0);
    expect(requestSeqFor(TRACE_PASS)).toBe(0);
    expect(a).toBeGreaterThan(0);
    expect(requestSeqFor(TRACE_PASS | TRACE_NO_REQUEST_ID)).toBe(a + 1);
  });
});
