import { expect, test } from "bun:test";
import { random } from "./random.ts";
import { eps, fakeCtx, tally } from "./testing.ts";

test("random spreads picks over every candidate", () => {
  const e = eps(3);
  const lb = random();
  const t = tally(() => lb.pick(e, fakeCtx()), 3000);
  for (const a of ["a:1", "b:1", "c:1"]) expect(t[a]!).toBeGreaterThan(800);
  expect(lb.pick([], fakeCtx())).toBeUndefined();
});
