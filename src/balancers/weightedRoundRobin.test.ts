import { expect, test } from "bun:test";
import { weightedRoundRobin } from "./weightedRoundRobin.ts";
import { eps, fakeCtx, tally } from "./testing.ts";

test("smooth weighted round-robin interleaves by weight (nginx order)", () => {
  const e = eps(3, [5, 1, 1]);
  const lb = weightedRoundRobin();
  const seq = Array.from({ length: 7 }, () => lb.pick(e, fakeCtx())!.address[0]).join("");
  expect(seq).toBe("aabacaa");
});

test("weights give exact shares over a full cycle; weight 0 gets nothing", () => {
  const e = eps(3, [3, 1, 0]);
  const lb = weightedRoundRobin();
  expect(tally(() => lb.pick(e, fakeCtx()), 400)).toEqual({ "a:1": 300, "b:1": 100 });
});
