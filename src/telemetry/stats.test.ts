import { describe, expect, test } from "bun:test";
import { Stats, WINDOW_MS, WINDOWS } from "./stats.ts";

describe("Stats", () => {
  test("rate, error rate and percentiles over the last 30 s", () => {
    const s = new Stats();
    const now = s.startedAt + 60_000;
    for (let i = 0; i < 90; i++) s.record("consumer", "shop", 200, false, 10, now - 1000);
    for (let i = 0; i < 9; i++) s.record("consumer", "shop", 503, true, 100, now - 1000);
    s.record("consumer", "shop", 200, false, 1000, now - 1000);
    const [x] = s.read(now);
    expect(x).toMatchObject({ direction: "consumer", service: "shop", requests: 100, errors: 9, errorRate: 0.09 });
    expect(x!.statusCodes).toEqual({ "1xx": 0, "2xx": 91, "3xx": 0, "4xx": 0, "5xx": 9 });
    // 100 requests over a 25..30 s span (where in its 5 s window `now` falls depends on the
    // clock), reported to 2 decimals: 100/30 = 3.333... may read 3.33.
    expect(x!.rate).toBeGreaterThanOrEqual(Math.floor((100 / 30) * 100) / 100);
    expect(x!.rate).toBeLessThanOrEqual(Math.ceil((100 / 25) * 100) / 100);
    // Bucket bounds are within 5% of the value.
    expect(x!.latencyMs.p50).toBeGreaterThanOrEqual(10);
    expect(x!.latencyMs.p50).toBeLessThan(10.5);
    expect(x!.latencyMs.p90).toBeGreaterThanOrEqual(10);
    expect(x!.latencyMs.p99).toBeGreaterThanOrEqual(100);
    expect(x!.latencyMs.p99).toBeLessThan(105);
  });

  test("old windows leave the rate; the ring keeps two minutes", () => {
    const s = new Stats();
    const t0 = s.startedAt - (s.startedAt % WINDOW_MS) + 10 * WINDOW_MS;
    for (let w = 0; w < WINDOWS + 10; w++) s.record("provider", "app", 200, false, 1, t0 + w * WINDOW_MS);
    const later = t0 + (WINDOWS + 20) * WINDOW_MS;
    const [x] = s.read(later);
    expect(x!.requests).toBe(WINDOWS + 10);
    expect(x!.windows).toHaveLength(WINDOWS);
    expect(x!.rate).toBe(0);
    expect(x!.latencyMs.p50).toBeNull();
  });

  test("series are kept per direction and service", () => {
    const s = new Stats();
    s.record("consumer", "b", 200, false, 1);
    s.record("provider", "a", 200, false, 1);
    s.record("consumer", "a", 200, false, 1);
    expect(s.read().map((x) => `${x.service}/${x.direction}`)).toEqual(["a/consumer", "a/provider", "b/consumer"]);
  });
});
