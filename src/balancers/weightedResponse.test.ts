import { expect, test } from "bun:test";
import { weightedResponse } from "./weightedResponse.ts";
import { eps, fakeCtx, tally } from "./testing.ts";

test("before any latency is known it is round-robin", () => {
  const e = eps(2);
  const lb = weightedResponse();
  expect(tally(() => lb.pick(e, fakeCtx()), 10)).toEqual({ "a:1": 5, "b:1": 5 });
});

test("after ranking, about 70% (plus its round-robin share) go to the fastest endpoint", () => {
  const e = eps(2);
  const lb = weightedResponse({ interval: 0 });
  for (let i = 0; i < 10; i++) {
    lb.done!(fakeCtx(), e[0]!, 50, false);
    lb.done!(fakeCtx(), e[1]!, 5, false);
  }
  const t = tally(() => lb.pick(e, fakeCtx()), 4000);
  // 70% to b, the other 30% split by round-robin: b ~ 85%.
  expect(t["b:1"]!).toBeGreaterThan(3100);
  expect(t["a:1"]!).toBeGreaterThan(300);
});

test("a ranked endpoint that is not a candidate is skipped", () => {
  const e = eps(3);
  const lb = weightedResponse({ interval: 0, percent: 100 });
  lb.done!(fakeCtx(), e[0]!, 1, false);
  lb.done!(fakeCtx(), e[1]!, 2, false);
  lb.done!(fakeCtx(), e[2]!, 3, false);
  expect(lb.pick([e[1]!, e[2]!], fakeCtx())!.address).toBe("b:1");
});

test("an endpoint never measured is tried first, so it gets measured", () => {
  const e = eps(2);
  const lb = weightedResponse({ interval: 0, percent: 100 });
  lb.done!(fakeCtx(), e[0]!, 1, false);
  expect(lb.pick(e, fakeCtx())!.address).toBe("b:1");
});
