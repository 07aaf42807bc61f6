import { expect, test } from "bun:test";
import { run, scripted, testCtx, testEnv } from "../testing.ts";
import { timeout } from "./index.ts";

test("a hanging upstream ends in 504 upstream_timeout at the service's timeout", async () => {
  const env = testEnv({ slow: { endpoints: ["a:1"], timeout: 30 } });
  const t0 = performance.now();
  expect(await run(env, [timeout], scripted(["hang"]), testCtx(env, "slow"))).toBe("upstream_timeout");
  expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
});

test("a route's timeout replaces the service's; 0 disables", async () => {
  const env = testEnv({ slow: { endpoints: ["a:1"], timeout: "10m" } });
  const ctx = testCtx(env, "slow");
  ctx.route = { name: "r", timeout: 20 };
  expect(await run(env, [timeout], scripted(["hang"]), ctx)).toBe("upstream_timeout");
  const fast = testCtx(env, "slow");
  fast.route = { name: "r", timeout: 0 };
  expect(await run(env, [timeout], scripted([200]), fast)).toBe(200);
});

test("the top-level timeout is the default; once headers are in, the signal is the client's again", async () => {
  const env = testEnv({ s: { endpoints: ["a:1"] } }, { timeout: 20 });
  const ctx = testCtx(env, "s");
  const before = ctx.signal;
  expect(await run(env, [timeout], scripted([200]), ctx)).toBe(200);
  expect(ctx.signal).toBe(before);
  expect(await run(env, [timeout], scripted(["hang"]), testCtx(env, "s"))).toBe("upstream_timeout");
});
