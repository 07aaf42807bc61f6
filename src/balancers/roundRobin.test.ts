import { expect, test } from "bun:test";
import { roundRobin } from "./roundRobin.ts";
import { makeEndpoint } from "../upstream/cluster.ts";
import type { Ctx } from "../pipeline/types.ts";

const ctx = {} as Ctx;

test("round-robin visits every candidate in turn", () => {
  const eps = ["a:1", "b:1", "c:1"].map((a) => makeEndpoint(a));
  const lb = roundRobin();
  const picks = Array.from({ length: 6 }, () => lb.pick(eps, ctx)!.address);
  expect(picks).toEqual(["a:1", "b:1", "c:1", "a:1", "b:1", "c:1"]);
});

test("round-robin returns undefined when nothing is available", () => {
  expect(roundRobin().pick([], ctx)).toBeUndefined();
});
