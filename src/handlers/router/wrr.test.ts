import { expect, test } from "bun:test";
import { smoothWrr } from "./wrr.ts";

test("80/20 gives exactly 800/200 in 1,000 picks, interleaved", () => {
  const wrr = smoothWrr(["a", "b"], [80, 20]);
  const picks = Array.from({ length: 1000 }, () => wrr.next());
  expect(picks.filter((x) => x === "a").length).toBe(800);
  expect(picks.filter((x) => x === "b").length).toBe(200);
  // Interleaved: every window of 5 holds exactly one "b", never a run of 80 "a"s.
  for (let i = 0; i + 5 <= picks.length; i += 5) {
    expect(picks.slice(i, i + 5).filter((x) => x === "b").length).toBe(1);
  }
  expect(picks.slice(0, 5)).toEqual(["a", "a", "b", "a", "a"]);
});

test("nginx's example 5/1/1 gives a a b a c a a", () => {
  const wrr = smoothWrr(["a", "b", "c"], [5, 1, 1]);
  expect(Array.from({ length: 7 }, () => wrr.next()).join("")).toBe("aabacaa");
});

test("weight 0 is never picked; a single item is always picked", () => {
  const wrr = smoothWrr(["a", "b", "c"], [0, 50, 50]);
  const picks = Array.from({ length: 100 }, () => wrr.next());
  expect(picks.includes("a")).toBe(false);
  expect(picks.filter((x) => x === "b").length).toBe(50);
  expect(smoothWrr(["x"], [3]).next()).toBe("x");
});

test("40/40/20 over 100 picks is exact", () => {
  const wrr = smoothWrr(["v1", "v2", "v3"], [40, 40, 20]);
  const counts: Record<string, number> = {};
  for (let i = 0; i < 100; i++) {
    const x = wrr.next();
    counts[x] = (counts[x] ?? 0) + 1;
  }
  expect(counts).toEqual({ v1: 40, v2: 40, v3: 20 });
});
