import { expect, test } from "bun:test";
import { loadBalance } from "../loadBalance/index.ts";
import { run, scripted, testCtx, testEnv } from "../testing.ts";
import { timeout } from "../timeout/index.ts";
import { MeshError } from "../../pipeline/errors.ts";
import { backoffMs, retry, retryReason } from "./index.ts";
import * as v from "valibot";
import { RetrySchema } from "./schema.ts";

const opts = (o: v.InferInput<typeof RetrySchema> = {}) => v.parse(RetrySchema, o);

test("retry_on conditions as Envoy's", () => {
  const o = opts({ on: ["gateway-error"] });
  expect(retryReason(o, undefined, new Response(null, { status: 503 }))).toBe("gateway-error");
  expect(retryReason(o, undefined, new Response(null, { status: 500 }))).toBeUndefined();
  expect(retryReason(o, new MeshError("upstream_connect_failure", "x"), undefined)).toBe("connect-failure");
  expect(retryReason(o, new MeshError("circuit_open", "x"), undefined)).toBeUndefined();
  expect(retryReason(opts({ on: ["5xx"] }), undefined, new Response(null, { status: 500 }))).toBe("5xx");
  expect(retryReason(opts({ on: ["retriable-4xx"] }), undefined, new Response(null, { status: 409 }))).toBe("retriable-4xx");
  const codes = opts({ on: ["retriable-status-codes"], statusCodes: [429] });
  expect(retryReason(codes, undefined, new Response(null, { status: 429 }))).toBe("retriable-status-codes");
  expect(retryReason(opts({ on: ["reset"] }), new MeshError("upstream_connect_failure", "x"), undefined)).toBeUndefined();
});

test("full-jitter backoff stays under min(max, base * 2^n)", () => {
  const o = opts({ backoff: { base: 10, max: 50 } });
  for (let i = 0; i < 200; i++) {
    expect(backoffMs(o, 0)).toBeLessThan(10);
    expect(backoffMs(o, 1)).toBeLessThan(20);
    expect(backoffMs(o, 6)).toBeLessThan(50);
  }
});

const base = { endpoints: ["a:1", "b:1", "c:1"], retry: { attempts: 2, nextEndpoint: 2, backoff: { base: 1, max: 2 } } };

test("a failed attempt moves to another endpoint and the retry's answer is returned", async () => {
  const env = testEnv({ s: base });
  const up = scripted([503, 503, 200]);
  expect(await run(env, [retry, loadBalance], up, testCtx(env, "s"))).toBe(200);
  const used = up.calls.map((c) => c.endpoint);
  expect(new Set(used).size).toBe(3);
  expect(await env.metrics.text()).toContain('retries_total{service_name="s",reason="gateway-error"} 2');
});

test("attempts are capped; the last failure is what the client gets", async () => {
  const env = testEnv({ s: base });
  const up = scripted(["connect"]);
  expect(await run(env, [retry, loadBalance], up, testCtx(env, "s"))).toBe("upstream_connect_failure");
  expect(up.calls.length).toBe(3);
});

test("POST is not retried unless nonIdempotent; bodies are replayed", async () => {
  const env = testEnv({ s: base, t: { ...base, retry: { ...base.retry, nonIdempotent: true } } });
  const once = scripted([503, 200]);
  expect(await run(env, [retry, loadBalance], once, testCtx(env, "s", { method: "POST", body: "hello" }))).toBe(503);
  expect(once.calls.length).toBe(1);
  const twice = scripted([503, 200]);
  expect(await run(env, [retry, loadBalance], twice, testCtx(env, "t", { method: "POST", body: "hello" }))).toBe(200);
  expect(twice.calls.map((c) => c.body)).toEqual(["hello", "hello"]);
});

test("a body over maxBodyBytes is sent whole but not retried", async () => {
  const env = testEnv({ s: { ...base, retry: { ...base.retry, maxBodyBytes: 4, nonIdempotent: true } } });
  const up = scripted([503, 200]);
  const ctx = testCtx(env, "s", { method: "PUT", body: "0123456789" });
  expect(await run(env, [retry, loadBalance], up, ctx)).toBe(503);
  expect(up.calls).toEqual([{ endpoint: expect.any(String), body: "0123456789" }]);
});

test("sameEndpoint retries stay on the endpoint, then move", async () => {
  const env = testEnv({ s: { ...base, retry: { attempts: 3, sameEndpoint: 1, nextEndpoint: 1, backoff: { base: 1, max: 1 } } } });
  const up = scripted([503]);
  await run(env, [retry, loadBalance], up, testCtx(env, "s"));
  const [a, b, c, d] = up.calls.map((x) => x.endpoint);
  expect(b).toBe(a!);
  expect(c).not.toBe(a!);
  expect(d).toBe(c!);
});

test("one endpoint: the retry goes to it again", async () => {
  const env = testEnv({ s: { ...base, endpoints: ["a:1"] } });
  const up = scripted([502, 200]);
  expect(await run(env, [retry, loadBalance], up, testCtx(env, "s"))).toBe(200);
  expect(up.calls.map((c) => c.endpoint)).toEqual(["a:1", "a:1"]);
});

test("the overall timeout covers every retry; per-try timeouts are retried", async () => {
  const env = testEnv({ s: { ...base, timeout: 60, retry: { attempts: 50, perTryTimeout: 10, on: ["5xx"], nextEndpoint: 50, backoff: { base: 1, max: 1 } } } });
  const up = scripted(["hang"]);
  expect(await run(env, [timeout, retry, loadBalance], up, testCtx(env, "s"))).toBe("upstream_timeout");
  expect(up.calls.length).toBeGreaterThan(1);
  expect(up.calls.length).toBeLessThan(10);
});

test("the retry budget stops retries beyond its share", async () => {
  const env = testEnv({ s: { ...base, retry: { ...base.retry, budget: { percent: 0, minConcurrency: 0 } } } });
  const up = scripted([503, 200]);
  expect(await run(env, [retry, loadBalance], up, testCtx(env, "s"))).toBe(503);
  expect(up.calls.length).toBe(1);
});

test("a route's retry policy replaces the service's; no policy, no retry", async () => {
  const env = testEnv({ s: { endpoints: ["a:1"] } });
  const none = scripted([503, 200]);
  expect(await run(env, [retry, loadBalance], none, testCtx(env, "s"))).toBe(503);
  const ctx = testCtx(env, "s");
  ctx.route = { name: "r", retry: opts({ attempts: 1, on: ["5xx"], backoff: { base: 1, max: 1 } }) };
  expect(await run(env, [retry, loadBalance], scripted([500, 200]), ctx)).toBe(200);
});

test("retries beyond nextEndpoint moves stay on the last endpoint", async () => {
  const env = testEnv({ s: { ...base, retry: { attempts: 3, nextEndpoint: 1, backoff: { base: 1, max: 1 } } } });
  const up = scripted([503]);
  await run(env, [retry, loadBalance], up, testCtx(env, "s"));
  const [a, b, c, d] = up.calls.map((x) => x.endpoint);
  expect(b).not.toBe(a!);
  expect([c, d]).toEqual([b, b]);
});

test("the overall timeout firing during a backoff wait answers upstream_timeout", async () => {
  const env = testEnv({ s: { ...base, timeout: 30, retry: { attempts: 3, on: ["5xx"], backoff: { base: 5000, max: 5000 } } } });
  // Full jitter could pick a short wait; with a 5 s base the odds that all waits fit in 30 ms are nil.
  expect(await run(env, [timeout, retry, loadBalance], scripted([500]), testCtx(env, "s"))).toBe("upstream_timeout");
});
