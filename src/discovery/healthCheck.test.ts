import { afterAll, describe, expect, test } from "bun:test";
import { createServer } from "node:net";
import { compileCheck, runCheck, runChecks, watchHealth } from "./healthCheck.ts";
import type { HealthCheckConfig } from "./schema.ts";

const base: HealthCheckConfig = { protocol: "http", path: "/health", interval: 50, timeout: 300 };

describe("local health checks (Mesher's localHealthCheck, without its defects)", () => {
  let status = 200;
  let body = "ok";
  let slow = false;
  const app = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      if (slow) await Bun.sleep(1000);
      return new Response(new URL(req.url).pathname === "/health" ? body : "other", { status });
    },
  });
  afterAll(() => app.stop(true));
  const check = (hc: Partial<HealthCheckConfig> = {}) => runCheck(compileCheck({ ...base, ...hc }, app.port));

  test("with no match, HTTP needs a 2xx (Mesher accepts any status)", async () => {
    status = 200;
    expect((await check()).ok).toBe(true);
    status = 500;
    const r = await check();
    expect(r.ok).toBe(false);
    expect(r.reason).toContain("status 500");
    status = 302;
    expect((await check()).ok).toBe(false);
  });

  test("match.status is exact and match.body is a regex", async () => {
    status = 503;
    body = "draining";
    expect((await check({ match: { status: 503 } })).ok).toBe(true);
    expect((await check({ match: { status: 200 } })).ok).toBe(false);
    status = 200;
    body = '{"status":"UP"}';
    expect((await check({ match: { body: '"status":\\s*"UP"' } })).ok).toBe(true);
    body = '{"status":"DOWN"}';
    const r = await check({ match: { body: '"status":\\s*"UP"' } });
    expect(r.ok).toBe(false);
    expect(r.reason).toContain("body does not match");
  });

  test("an app that cannot be reached, or answers too late, is unhealthy", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as { port: number }).port;
    closed.close();
    expect((await runCheck(compileCheck(base, port))).ok).toBe(false);
    expect((await runCheck(compileCheck({ ...base, protocol: "tcp" }, port))).ok).toBe(false);
    slow = true;
    try {
      const r = await check({ timeout: 100 });
      expect(r.ok).toBe(false);
    } finally {
      slow = false;
    }
  });

  test("tcp passes when a connection opens", async () => {
    status = 200;
    expect((await check({ protocol: "tcp" })).ok).toBe(true);
  });

  test("all checks of an app must pass", async () => {
    status = 200;
    body = "ok";
    const good = compileCheck(base, app.port);
    const bad = compileCheck({ ...base, path: "/health", match: { body: "^nope$" } }, app.port);
    expect((await runChecks([good])).ok).toBe(true);
    expect((await runChecks([good, bad])).ok).toBe(false);
  });

  test("the first check runs at start, not one interval later", async () => {
    const t = performance.now();
    const first = await new Promise<number>((resolve) => {
      const stop = watchHealth([compileCheck({ ...base, interval: 60_000 }, app.port)], () => {
        stop();
        resolve(performance.now() - t);
      });
    });
    expect(first).toBeLessThan(5000);
  });

  test("a check needs a port", () => {
    expect(() => compileCheck(base, undefined)).toThrow(/port/);
  });
});
