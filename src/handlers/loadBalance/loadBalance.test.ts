import { expect, test } from "bun:test";
import { resolveConfig } from "../../config/resolve.ts";
import { ConfigError } from "../../config/errors.ts";
import { run, scripted, testCtx, testEnv } from "../testing.ts";
import { loadBalance } from "./index.ts";

test("uses the service's balancer, else the top-level default", async () => {
  const env = testEnv(
    {
      w: { endpoints: [{ address: "a:1", weight: 3 }, { address: "b:1", weight: 1 }], loadBalancer: "weightedRoundRobin" },
      d: { endpoints: ["a:1", "b:1"] },
    },
    { loadBalancer: { kind: "consistentHash", header: "x-user" } },
  );
  const seen: string[] = [];
  for (let i = 0; i < 8; i++) {
    const ctx = testCtx(env, "w");
    await run(env, [loadBalance], scripted([200]), ctx);
    seen.push(ctx.endpoint!.address);
  }
  expect(seen.filter((a) => a === "a:1").length).toBe(6);
  const sticky = new Set<string>();
  for (let i = 0; i < 5; i++) {
    const ctx = testCtx(env, "d", { headers: { "x-user": "ann" } });
    await run(env, [loadBalance], scripted([200]), ctx);
    sticky.add(ctx.endpoint!.address);
  }
  expect(sticky.size).toBe(1);
});

test("skips ejected endpoints and those tried; retries all when every one was tried", async () => {
  const env = testEnv({ s: { endpoints: ["a:1", "b:1", "c:1"] } });
  const [a, b, c] = env.clusters.get("s")!.endpoints;
  a!.ejectedUntil = Date.now() + 60_000;
  const ctx = testCtx(env, "s");
  ctx.tried = [b!];
  await run(env, [loadBalance], scripted([200]), ctx);
  expect(ctx.endpoint).toBe(c!);
  const all = testCtx(env, "s");
  all.tried = [b!, c!];
  await run(env, [loadBalance], scripted([200]), all);
  expect([b, c]).toContain(all.endpoint!);
  a!.ejectedUntil = 0;
  const none = testCtx(env, "s");
  none.route = { name: "r", tags: { version: "v9" } };
  expect(await run(env, [loadBalance], scripted([200]), none)).toBe("no_healthy_upstream");
});

test("the balancer learns latency through done()", async () => {
  const env = testEnv({ s: { endpoints: ["a:1", "b:1"], loadBalancer: { kind: "weightedResponse", interval: 0, percent: 100 } } });
  const slowA = async function upstream(ctx: Parameters<ReturnType<typeof scripted>>[0]) {
    if (ctx.endpoint!.address === "a:1") await Bun.sleep(40);
    ctx.res = new Response(null, { status: 200 });
  };
  for (let i = 0; i < 4; i++) await run(env, [loadBalance], slowA, testCtx(env, "s"));
  const picks = new Set<string>();
  for (let i = 0; i < 5; i++) {
    const ctx = testCtx(env, "s");
    await run(env, [loadBalance], slowA, ctx);
    picks.add(ctx.endpoint!.address);
  }
  expect([...picks]).toEqual(["b:1"]);
});

test("a balancer config error names the path", () => {
  const bad = (lb: unknown) => () => resolveConfig({ service: { name: "x" }, services: { s: { endpoints: ["a:1"], loadBalancer: lb as never } } });
  expect(bad("consistentHash")).toThrow(ConfigError);
  expect(bad("fastest")).toThrow(/services\.s\.loadBalancer/);
  expect(bad({ kind: "consistentHash" })).toThrow(/needs header, cookie or sourceIp/);
  expect(bad({ kind: "roundRobin", header: "x" })).toThrow(ConfigError);
});
