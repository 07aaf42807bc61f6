import { expect, test } from "bun:test";
import { viaContains } from "./handle.ts";

test("viaContains finds a whole item of the comma list, never a part of one", () => {
  expect(viaContains(null, "a/consumer")).toBe(false);
  expect(viaContains("", "a/consumer")).toBe(false);
  expect(viaContains("a/consumer", "a/consumer")).toBe(true);
  expect(viaContains("x/consumer, a/consumer", "a/consumer")).toBe(true);
  expect(viaContains("a/consumer ,x/provider", "a/consumer")).toBe(true);
  expect(viaContains("x/consumer,\ta/consumer\t", "a/consumer")).toBe(true);
  expect(viaContains("xa/consumer", "a/consumer")).toBe(false);
  expect(viaContains("a/consumerx, b/provider", "a/consumer")).toBe(false);
  expect(viaContains("a/consumer-2, ba/consumer", "a/consumer")).toBe(false);
  expect(viaContains("xa/consumer, a/consumer", "a/consumer")).toBe(true);
});
