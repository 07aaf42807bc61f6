import { expect, test } from "bun:test";
import { Breaker, type BreakerState } from "./breaker.ts";

const settings = { requestVolumeThreshold: 4, errorThresholdPercentage: 50, sleepWindow: 1000, rollingWindow: 10_000 };

test("stays closed under the request volume, trips at the error share", () => {
  const seen: BreakerState[] = [];
  const b = new Breaker(settings, (s) => seen.push(s));
  b.record(true, false, 0);
  b.record(true, false, 1);
  b.record(true, false, 2);
  expect(b.state).toBe("closed"); // 3 < volume 4
  b.record(false, false, 3);
  expect(b.state).toBe("closed"); // last one a success: hystrix checks on failures
  b.record(true, false, 4);
  expect(b.state).toBe("open"); // 4 of 5 failed
  expect(seen).toEqual(["open"]);
  expect(b.acquire(500)).toBe(false);
});

test("after the sleep window exactly one probe passes; its success closes", () => {
  const seen: BreakerState[] = [];
  const b = new Breaker(settings, (s) => seen.push(s));
  for (let i = 0; i < 4; i++) b.record(true, false, i);
  expect(b.acquire(1003)).toBe("probe");
  expect(b.acquire(1004)).toBe(false); // one probe at a time
  b.record(false, true, 1010);
  expect(b.state).toBe("closed");
  expect(b.acquire(1011)).toBe("closed");
  expect(seen).toEqual(["open", "half_open", "closed"]);
  // the window was reset: one failure does not re-trip
  b.record(true, false, 1012);
  expect(b.state).toBe("closed");
});

test("a failed probe opens it for another sleep window; a released probe can be retaken", () => {
  const b = new Breaker(settings);
  for (let i = 0; i < 4; i++) b.record(true, false, i);
  expect(b.acquire(1003)).toBe("probe");
  b.release();
  expect(b.acquire(1004)).toBe("probe");
  b.record(true, true, 1005);
  expect(b.state).toBe("open");
  expect(b.acquire(1900)).toBe(false);
  expect(b.acquire(2006)).toBe("probe");
});

test("old failures roll out of the window", () => {
  const b = new Breaker(settings);
  for (let i = 0; i < 3; i++) b.record(true, false, i);
  b.record(true, false, 20_000); // the first three are outside the 10 s window now
  expect(b.state).toBe("closed");
});
