import { expect, test } from "bun:test";
import { run, scripted, testCtx, testEnv } from "../testing.ts";
import { rateLimit } from "./index.ts";
import { TokenBucket } from "./tokenBucket.ts";

test("a token bucket allows a burst, then the rate", () => {
  const b = new TokenBucket(10, 3, 0);
  expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
  expect(b.take(50)).toBe(false); // half a token
  expect(b.take(100)).toBe(true); // 0.1 s at 10/s: one token
  expect(b.take(100_000)).toBe(true);
  expect(new TokenBucket(0, 1, 0).take(0)).toBe(false); // rate 0 refuses everything
});

const ok = () => scripted([200]);

test("consumer side: one bucket per target service; 429 rate_limited above it", async () => {
  const env = testEnv({ s: { endpoints: ["a:1"], rateLimit: { rate: 1, burst: 2 } }, free: { endpoints: ["a:1"] } });
  const results = [];
  for (let i = 0; i < 4; i++) results.push(await run(env, [rateLimit], ok(), testCtx(env, "s")));
  expect(results).toEqual([200, 200, "rate_limited", "rate_limited"]);
  for (let i = 0; i < 10; i++) expect(await run(env, [rateLimit], ok(), testCtx(env, "free"))).toBe(200);
  expect(await env.metrics.text()).toContain('rate_limited_total{service_name="s",side="consumer"} 2');
});

test("keyed by header or client address: each key has its own bucket", async () => {
  const env = testEnv({
    h: { endpoints: ["a:1"], rateLimit: { rate: 0.001, burst: 1, by: { header: "x-user" } } },
    ip: { endpoints: ["a:1"], rateLimit: { rate: 0.001, burst: 1, by: "clientIp", maxKeys: 2 } },
  });
  expect(await run(env, [rateLimit], ok(), testCtx(env, "h", { headers: { "x-user": "ann" } }))).toBe(200);
  expect(await run(env, [rateLimit], ok(), testCtx(env, "h", { headers: { "x-user": "ann" } }))).toBe("rate_limited");
  expect(await run(env, [rateLimit], ok(), testCtx(env, "h", { headers: { "x-user": "bob" } }))).toBe(200);
  expect(await run(env, [rateLimit], ok(), testCtx(env, "ip", { client: "1.1.1.1" }))).toBe(200);
  expect(await run(env, [rateLimit], ok(), testCtx(env, "ip", { client: "1.1.1.1" }))).toBe("rate_limited");
  expect(await run(env, [rateLimit], ok(), testCtx(env, "ip", { client: "2.2.2.2" }))).toBe(200);
});

test("the top-level consumer limit is the default for services without one", async () => {
  const env = testEnv({ s: { endpoints: ["a:1"] } }, { rateLimit: { consumer: { rate: 0.001, burst: 1 } } });
  expect(await run(env, [rateLimit], ok(), testCtx(env, "s"))).toBe(200);
  expect(await run(env, [rateLimit], ok(), testCtx(env, "s"))).toBe("rate_limited");
});

test("provider side: per caller service, with per-source rates", async () => {
  const env = testEnv({}, { rateLimit: { provider: { rate: 0.001, burst: 1, sources: { vip: { rate: 0.001, burst: 3 } } } } }, "provider");
  const from = (name: string) => {
    const ctx = testCtx(env, "shop");
    ctx.source = { name };
    return ctx;
  };
  expect(await run(env, [rateLimit], ok(), from("a"))).toBe(200);
  expect(await run(env, [rateLimit], ok(), from("a"))).toBe("rate_limited");
  expect(await run(env, [rateLimit], ok(), from("b"))).toBe(200);
  const vip = [];
  for (let i = 0; i < 4; i++) vip.push(await run(env, [rateLimit], ok(), from("vip")));
  expect(vip).toEqual([200, 200, 200, "rate_limited"]);
});

test("limits survive a rebuild of the chain (reload) when unchanged", async () => {
  const env = testEnv({ s: { endpoints: ["a:1"], rateLimit: { rate: 0.001, burst: 1 } } });
  expect(await run(env, [rateLimit], ok(), testCtx(env, "s"))).toBe(200);
  // run() builds the handler afresh each time; the bucket lives in env.store
  expect(await run(env, [rateLimit], ok(), testCtx(env, "s"))).toBe("rate_limited");
});
