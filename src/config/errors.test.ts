import { expect, test } from "bun:test";
import { resolveConfig } from "./resolve.ts";

test("a missing required field and an unknown field are told apart", () => {
  expect(() => resolveConfig({ service: { name: "a" }, services: { s: { rateLimit: { burst: 2 } } } })).toThrow(
    "services.s.rateLimit.rate: a required field, got nothing",
  );
  expect(() => resolveConfig({ service: { name: "a", bogus: 1 } })).toThrow("service.bogus: a known field (this one is not)");
});
