import { describe, expect, test } from "bun:test";
import { Counter, Histogram, Registry } from "prom-client";
import { HotCounter, HotHistogram } from "./hot.ts";

/** The same observations through prom-client's own metrics and through hot.ts's. */
async function expositions(observe: (c: (labels: string[], n: number) => void, h: (labels: string[], v: number) => void) => void) {
  const buckets = [0.001, 0.01, 0.1, 1];
  const names = ["service_name", "version"];
  const a = new Registry();
  const pc = new Counter({ name: "calls_total", help: "Calls", labelNames: names, registers: [a] });
  const ph = new Histogram({ name: "call_seconds", help: "Call time", labelNames: names, buckets, registers: [a] });
  observe(
    (l, n) => pc.labels(...l).inc(n),
    (l, v) => ph.labels(...l).observe(v),
  );
  const b = new Registry();
  const hc = new HotCounter("calls_total", "Calls", names, b);
  const hh = new HotHistogram("call_seconds", "Call time", names, buckets, b);
  observe(
    (l, n) => (hc.labels(...l).value += n),
    (l, v) => hh.observe(hh.labels(...l), v),
  );
  return [await a.metrics(), await b.metrics()];
}

describe("hot metrics", () => {
  test("print exactly what prom-client's Counter and Histogram print for the same observations", async () => {
    const [expected, actual] = await expositions((count, observe) => {
      count(["shop", "1.0"], 1);
      count(["shop", "1.0"], 2);
      count(["cart", 'a"b\\c'], 1);
      for (const v of [0.0005, 0.001, 0.002, 0.05, 0.5, 3, 0]) observe(["shop", "1.0"], v);
      observe(["cart", "2.0"], 0.02);
    });
    expect(actual).toBe(expected);
    expect(actual).toContain('call_seconds_bucket{le="0.001",service_name="shop",version="1.0"} 3');
    expect(actual).toContain('call_seconds_bucket{le="+Inf",service_name="shop",version="1.0"} 7');
    expect(actual).toContain('calls_total{service_name="shop",version="1.0"} 3');
  });

  test("a series is created once per label values and kept", () => {
    const c = new HotCounter("x_total", "x", ["a"], new Registry());
    expect(c.labels("1")).toBe(c.labels("1"));
    expect(c.labels("1")).not.toBe(c.labels("2"));
  });
});
