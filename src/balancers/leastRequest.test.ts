import { expect, test } from "bun:test";
import { leastRequest } from "./leastRequest.ts";
import { eps, fakeCtx, tally } from "./testing.ts";

test("power of two choices never picks the busiest of two", () => {
  const e = eps(2);
  e[0]!.active = 10;
  const lb = leastRequest();
  expect(tally(() => lb.pick(e, fakeCtx()), 100)).toEqual({ "b:1": 100 });
});

test("with many endpoints the busy one gets far less", () => {
  const e = eps(4);
  e[0]!.active = 50;
  const lb = leastRequest();
  const t = tally(() => lb.pick(e, fakeCtx()), 4000);
  expect(t["a:1"] ?? 0).toBe(0); // two distinct choices: a always loses to the other one
  expect(lb.pick(eps(1), fakeCtx())!.address).toBe("a:1");
});
