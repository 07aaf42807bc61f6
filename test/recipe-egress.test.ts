import { expect, test } from "bun:test";
import { run } from "./helpers.ts";

test("recipes/egress runs with one command: the allowed host tunnels, the other is refused", async () => {
  const r = await run(["bun", "recipes/egress/run.ts"]);
  expect(r.stdout).toMatch(/allowed: .* -> 200 .*"from":"partner-api"/);
  expect(r.stdout).toMatch(/forbidden: .* -> refused \(.*403/);
  expect(r.stderr).toContain("refused CONNECT 127.0.0.1:");
  expect(r.code).toBe(0);
});
