import { expect, test } from "bun:test";
import { loadBalance } from "../loadBalance/index.ts";
import { run, scripted, testCtx, testEnv } from "../testing.ts";
import { outlierDetection } from "./index.ts";

const chain = [loadBalance, outlierDetection];
/** An upstream where a:1 fails with `how` and the others answer 200. */
const oneBad = (how: number | "connect") =>
  async function upstream(ctx: Parameters<ReturnType<typeof scripted>>[0]) {
    if (ctx.endpoint!.address === "a:1") return scripted([how])(ctx, async () => {});
    ctx.res = new Response(null, { status: 200 });
  };

test("five 5xx in a row eject the endpoint; the balancer then skips it", async () => {
  const env = testEnv({ s: { endpoints: ["a:1", "b:1", "c:1"], outlierDetection: { maxEjectionPercent: 50 } } });
  const a = env.clusters.get("s")!.endpoints[0]!;
  for (let i = 0; i < 12; i++) await run(env, chain, oneBad(500), testCtx(env, "s"));
  expect(a.ejectedUntil).toBe(0); // round-robin: a answered calls 1, 4, 7, 10: four 5xx
  await run(env, chain, oneBad(500), testCtx(env, "s")); // call 13 is a's fifth
  expect(a.ejectedUntil).toBeGreaterThan(Date.now() + 29_000);
  const used = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const ctx = testCtx(env, "s");
    await run(env, chain, oneBad(500), ctx);
    used.add(ctx.endpoint!.address);
  }
  expect([...used].sort()).toEqual(["b:1", "c:1"]);
  expect(await env.metrics.text()).toContain('outlier_ejections_total{service_name="s",endpoint="a:1"} 1');
});

test("a success resets the count; connect failures count as gateway errors", async () => {
  const env = testEnv({ s: { endpoints: ["a:1"], outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 3 } } });
  const a = env.clusters.get("s")!.endpoints[0]!;
  await run(env, chain, oneBad("connect"), testCtx(env, "s"));
  await run(env, chain, oneBad("connect"), testCtx(env, "s"));
  await run(env, chain, scripted([200]), testCtx(env, "s"));
  await run(env, chain, oneBad("connect"), testCtx(env, "s"));
  await run(env, chain, oneBad(500), testCtx(env, "s")); // a plain 500 is not a gateway error
  await run(env, chain, oneBad("connect"), testCtx(env, "s"));
  expect(a.ejectedUntil).toBe(0);
  await run(env, chain, oneBad(503), testCtx(env, "s"));
  await run(env, chain, oneBad(502), testCtx(env, "s"));
  expect(a.ejectedUntil).toBeGreaterThan(Date.now()); // one endpoint: at least one may be ejected
  expect(await run(env, chain, scripted([200]), testCtx(env, "s"))).toBe("no_healthy_upstream");
});

test("never more than maxEjectionPercent (but at least one); ejections grow", async () => {
  const env = testEnv({ s: { endpoints: ["a:1", "b:1", "c:1", "d:1"], outlierDetection: { consecutive5xx: 1, baseEjectionTime: 1000, maxEjectionTime: 2500 } } });
  const eps = env.clusters.get("s")!.endpoints;
  for (let i = 0; i < 8; i++) await run(env, chain, scripted([500]), testCtx(env, "s"));
  expect(eps.filter((e) => e.ejectedUntil > Date.now()).length).toBe(1); // 10% of 4, at least 1
  const ejected = eps.find((e) => e.ejectedUntil > 0)!;
  const first = ejected.ejectedUntil - Date.now();
  expect(first).toBeLessThanOrEqual(1000);
  ejected.ejectedUntil = Date.now() - 1; // its time is up (without waiting a second)
  const ctx = testCtx(env, "s");
  ctx.retryEndpoint = ejected; // send the next request to it
  await run(env, chain, scripted([500]), ctx);
  expect(ejected.ejectedUntil - Date.now()).toBeGreaterThan(1500); // the second ejection lasts 2x
});
