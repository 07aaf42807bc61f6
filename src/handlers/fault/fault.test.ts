import { expect, test } from "bun:test";
import { run, scripted, testCtx, testEnv } from "../testing.ts";
import { fault } from "./index.ts";

test("abort by percent answers the configured status with fault_injected", async () => {
  const env = testEnv({ s: { endpoints: ["a:1"], fault: { abort: { httpStatus: 418 } } }, half: { endpoints: ["a:1"], fault: { abort: { httpStatus: 500, percent: 50 } } } });
  const ctx = testCtx(env, "s");
  const up = scripted([200]);
  expect(await run(env, [fault], up, ctx)).toBe("fault_injected");
  expect(up.calls.length).toBe(0);
  let aborted = 0;
  for (let i = 0; i < 400; i++) if ((await run(env, [fault], scripted([200]), testCtx(env, "half"))) === "fault_injected") aborted++;
  expect(aborted).toBeGreaterThan(120);
  expect(aborted).toBeLessThan(280);
});

test("the delay comes first, then the abort", async () => {
  const env = testEnv({ s: { endpoints: ["a:1"], fault: { delay: { fixedDelay: 30 }, abort: { httpStatus: 503 } } } });
  const t0 = performance.now();
  expect(await run(env, [fault], scripted([200]), testCtx(env, "s"))).toBe("fault_injected");
  expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
  expect(await env.metrics.text()).toContain('faults_injected_total{service_name="s",kind="delay"} 1');
});

test("Envoy's headers count only with fromHeaders, and are not forwarded", async () => {
  const h = { "x-envoy-fault-abort-request": "429" };
  const env = testEnv({ off: { endpoints: ["a:1"], fault: {} }, on: { endpoints: ["a:1"], fault: { fromHeaders: true } } });
  expect(await run(env, [fault], scripted([200]), testCtx(env, "off", { headers: h }))).toBe(200);
  const ctx = testCtx(env, "on", { headers: h });
  const err = await run(env, [fault], scripted([200]), ctx);
  expect(err).toBe("fault_injected");
  const zero = testCtx(env, "on", { headers: { ...h, "x-envoy-fault-abort-request-percentage": "0" } });
  expect(await run(env, [fault], scripted([200]), zero)).toBe(200);
  expect(zero.headers.has("x-envoy-fault-abort-request")).toBe(false);
});

test("a route's fault replaces the service's", async () => {
  const env = testEnv({ s: { endpoints: ["a:1"], fault: { abort: { httpStatus: 500 } } } });
  const ctx = testCtx(env, "s");
  ctx.route = { name: "r", fault: { abort: { httpStatus: 500, percent: 0 }, fromHeaders: false } };
  expect(await run(env, [fault], scripted([200]), ctx)).toBe(200);
});
