import { expect, test } from "bun:test";
import * as v from "valibot";
import { Duration, parseDuration } from "./duration.ts";

test("durations read as Go and Envoy write them", () => {
  expect(parseDuration("250ms")).toBe(250);
  expect(parseDuration("1.5s")).toBe(1500);
  expect(parseDuration("2m")).toBe(120_000);
  expect(parseDuration("1h")).toBe(3_600_000);
  expect(parseDuration("10")).toBeUndefined();
  expect(parseDuration("5 days")).toBeUndefined();
});

test("the Duration schema takes milliseconds or strings and refuses the rest", () => {
  expect(v.parse(Duration, 1500)).toBe(1500);
  expect(v.parse(Duration, "30s")).toBe(30_000);
  expect(v.safeParse(Duration, "30 seconds").success).toBe(false);
  expect(v.safeParse(Duration, -1).success).toBe(false);
});
