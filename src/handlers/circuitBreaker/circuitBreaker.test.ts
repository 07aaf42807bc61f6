import { expect, test } from "bun:test";
import { loadBalance } from "../loadBalance/index.ts";
import { run, scripted, testCtx, testEnv } from "../testing.ts";
import { circuitBreaker } from "./index.ts";

// A sleep window long enough that a busy machine does not reach it between two calls.
const cb = { requestVolumeThreshold: 3, errorThresholdPercentage: 50, sleepWindow: 300 };

test("trips after failures, answers circuit_open fast, probes after the sleep window, closes", async () => {
  const env = testEnv({ s: { endpoints: ["a:1"], circuitBreaker: cb } });
  const up = scripted([500, 500, 500, 200]);
  for (let i = 0; i < 3; i++) expect(await run(env, [circuitBreaker, loadBalance], up, testCtx(env, "s"))).toBe(500);
  expect(await run(env, [circuitBreaker, loadBalance], up, testCtx(env, "s"))).toBe("circuit_open");
  expect(up.calls.length).toBe(3);
  await Bun.sleep(310);
  expect(await run(env, [circuitBreaker, loadBalance], up, testCtx(env, "s"))).toBe(200);
  expect(await run(env, [circuitBreaker, loadBalance], up, testCtx(env, "s"))).toBe(200);
  const text = await env.metrics.text();
  expect(text).toContain('circuit_breaker_state_changes_total{service_name="s",breaker="s",state="open"} 1');
  expect(text).toContain('circuit_breaker_state_changes_total{service_name="s",breaker="s",state="closed"} 1');
  expect(text).toContain('circuit_breaker_rejections_total{service_name="s",reason="circuit_open"} 1');
});

test("failure statuses are configurable; connect errors always count", async () => {
  const env = testEnv({ s: { endpoints: ["a:1"], circuitBreaker: { ...cb, failureStatuses: [418] } } });
  const up = scripted([500]);
  for (let i = 0; i < 5; i++) expect(await run(env, [circuitBreaker, loadBalance], up, testCtx(env, "s"))).toBe(500);
  const err = scripted(["connect"]);
  for (let i = 0; i < 5; i++) await run(env, [circuitBreaker, loadBalance], err, testCtx(env, "s"));
  expect(await run(env, [circuitBreaker, loadBalance], err, testCtx(env, "s"))).toBe("circuit_open");
});

test("fallbacks: empty 200, or an inline function", async () => {
  const env = testEnv({
    e: { endpoints: ["a:1"], circuitBreaker: { ...cb, fallback: "empty" } },
    f: { endpoints: ["a:1"], circuitBreaker: { ...cb, fallback: (_ctx, reason) => new Response(`cached (${reason})`, { status: 203 }) } },
  });
  for (const s of ["e", "f"]) for (let i = 0; i < 3; i++) await run(env, [circuitBreaker, loadBalance], scripted([503]), testCtx(env, s));
  expect(await run(env, [circuitBreaker, loadBalance], scripted([200]), testCtx(env, "e"))).toBe(200);
  const ctx = testCtx(env, "f");
  expect(await run(env, [circuitBreaker, loadBalance], scripted([200]), ctx)).toBe(203);
  expect(await ctx.res!.text()).toBe("cached (circuit_open)");
});

test("maxConcurrent is a bulkhead: excess requests are refused as overloaded", async () => {
  const env = testEnv({ s: { endpoints: ["a:1"], circuitBreaker: { maxConcurrent: 1 } } });
  const ctx = testCtx(env, "s");
  const ac = new AbortController();
  ctx.signal = ac.signal;
  const first = run(env, [circuitBreaker, loadBalance], scripted(["hang"]), ctx);
  expect(await run(env, [circuitBreaker, loadBalance], scripted([200]), testCtx(env, "s"))).toBe("overloaded");
  ac.abort(new Error("done"));
  await first;
  expect(await run(env, [circuitBreaker, loadBalance], scripted([200]), testCtx(env, "s"))).toBe(200);
});

test("route scope keeps one breaker per route", async () => {
  const env = testEnv({ s: { endpoints: ["a:1"], circuitBreaker: { ...cb, scope: "route" } } });
  const at = (route: string) => {
    const ctx = testCtx(env, "s");
    ctx.route = { name: route };
    return ctx;
  };
  for (let i = 0; i < 3; i++) await run(env, [circuitBreaker, loadBalance], scripted([500]), at("bad"));
  expect(await run(env, [circuitBreaker, loadBalance], scripted([200]), at("bad"))).toBe("circuit_open");
  expect(await run(env, [circuitBreaker, loadBalance], scripted([200]), at("good"))).toBe(200);
});

test("endpoint scope steers away from the open endpoint", async () => {
  const env = testEnv({ s: { endpoints: ["a:1", "b:1"], circuitBreaker: { ...cb, scope: "endpoint" } } });
  const bad = async function upstream(ctx: Parameters<ReturnType<typeof scripted>>[0]) {
    ctx.res = new Response(null, { status: ctx.endpoint!.address === "a:1" ? 500 : 200 });
  };
  for (let i = 0; i < 8; i++) await run(env, [circuitBreaker, loadBalance], bad, testCtx(env, "s"));
  const used = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const ctx = testCtx(env, "s");
    expect(await run(env, [circuitBreaker, loadBalance], bad, ctx)).toBe(200);
    used.add(ctx.endpoint!.address);
  }
  expect([...used]).toEqual(["b:1"]);
});

test("a service without circuitBreaker passes through", async () => {
  const env = testEnv({ s: { endpoints: ["a:1"] } });
  for (let i = 0; i < 30; i++) expect(await run(env, [circuitBreaker, loadBalance], scripted([500]), testCtx(env, "s"))).toBe(500);
});
