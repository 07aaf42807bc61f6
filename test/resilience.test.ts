/**
 * Resilience end to end: a real app (or a dead port) behind a real sidecar, called as an app
 * with HTTP_PROXY would.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { startApp, startEchoApp, startSidecar, twoSidecars, viaProxy, closedPort } from "./helpers.ts";
import type { Mesher } from "../src/server.ts";

/** Polls `check` until it returns true (bounded); fails the test if it never does. */
async function until(what: string, check: () => Promise<boolean> | boolean, limitMs = 10_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (Date.now() < end) {
    if (await check()) return;
    await Bun.sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const stops: (() => unknown)[] = [];
afterAll(async () => {
  for (const s of stops.reverse()) await s();
});
function sidecar(config: Parameters<typeof startSidecar>[0]): { m: Mesher; proxy: string } {
  const m = startSidecar(config);
  stops.push(() => m.stop());
  return { m, proxy: `http://${m.addresses.consumer}` };
}
function app(fetch: (req: Request) => Response | Promise<Response>): Server<undefined> {
  const s = startApp(fetch);
  stops.push(() => s.stop(true));
  return s;
}

describe("retry", () => {
  let hits = 0;
  const flaky = app(() => (++hits % 2 === 1 ? new Response("flaky", { status: 503 }) : new Response("fine")));
  const { m: retrying, proxy } = sidecar({
    service: { name: "shop" },
    services: { flaky: { endpoints: [`127.0.0.1:${flaky.port}`], retry: { attempts: 2, on: ["gateway-error"] } } },
  });

  test("a flaky upstream is retried: every GET succeeds", async () => {
    hits = 0;
    for (let i = 0; i < 5; i++) {
      const r = await viaProxy(proxy, "http://flaky/x");
      expect(r.status).toBe(200);
      expect(await r.text()).toBe("fine");
    }
    expect(hits).toBe(10);
    const metrics = await (await fetch(`http://${retrying.addresses.admin}/v1/mesher/metrics`)).text();
    expect(metrics).toContain('retries_total{service_name="flaky",reason="gateway-error"} 5');
  });

  test("POST is not retried by default", async () => {
    hits = 0;
    const r = await viaProxy(proxy, "http://flaky/x", { method: "POST", body: "order" });
    expect(r.status).toBe(503);
    await r.text();
    expect(hits).toBe(1);
  });
});

describe("circuit breaker", () => {
  const port = closedPort();
  const { proxy, m } = sidecar({
    service: { name: "shop" },
    services: {
      dead: { endpoints: [`127.0.0.1:${port}`], circuitBreaker: { requestVolumeThreshold: 4, errorThresholdPercentage: 50, sleepWindow: 800 } },
    },
  });

  test("a dead upstream trips the breaker (fast 503 circuit_open) and it recovers after the sleep window", async () => {
    for (let i = 0; i < 4; i++) {
      const r = await viaProxy(proxy, "http://dead/");
      expect(r.status).toBe(502);
      expect(r.headers.get("x-mesher-error")).toBe("upstream_connect_failure");
    }
    const t0 = performance.now();
    const open = await viaProxy(proxy, "http://dead/");
    expect(open.status).toBe(503);
    expect(open.headers.get("x-mesher-error")).toBe("circuit_open");
    expect((await open.json()).error.code).toBe("circuit_open");
    expect(performance.now() - t0).toBeLessThan(1000);
    const stats = async () => (await (await fetch(`http://${m.addresses.admin}/stats`, { headers: { accept: "application/json" } })).json());
    expect((await stats()).clusters.find((c: { name: string }) => c.name === "dead").breaker).toBe("open");

    // The upstream comes back on the same port; after the sleep window a probe closes the breaker.
    const back = Bun.serve({ hostname: "127.0.0.1", port, fetch: () => new Response("back") });
    stops.push(() => back.stop(true));
    let statuses: number[] = [];
    await until("the breaker to close", async () => {
      const r = await viaProxy(proxy, "http://dead/");
      statuses.push(r.status);
      await r.text();
      return r.status === 200;
    });
    expect(statuses.every((s) => s === 503 || s === 200)).toBe(true);
    statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await viaProxy(proxy, "http://dead/")).status);
    expect(statuses).toEqual([200, 200, 200]);
    expect((await stats()).clusters.find((c: { name: string }) => c.name === "dead").breaker).toBe("closed");
    const metrics = await (await fetch(`http://${m.addresses.admin}/v1/mesher/metrics`)).text();
    for (const state of ["open", "half_open", "closed"]) {
      expect(metrics).toMatch(new RegExp(`circuit_breaker_state_changes_total\\{service_name="dead",breaker="dead",state="${state}"\\} [1-9]`));
    }
    expect(metrics).toMatch(/circuit_breaker_rejections_total\{service_name="dead",reason="circuit_open"\} [1-9]/);
  });
});

describe("outlier detection", () => {
  const good = startEchoApp("good");
  stops.push(() => good.stop(true));
  const badPort = closedPort();
  const { m, proxy } = sidecar({
    service: { name: "shop" },
    services: {
      pool: {
        endpoints: [`127.0.0.1:${good.port}`, `127.0.0.1:${badPort}`],
        outlierDetection: { consecutiveGatewayErrors: 2, maxEjectionPercent: 50 },
      },
    },
  });

  test("an endpoint refusing connections is ejected and shows so on /clusters", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await viaProxy(proxy, "http://pool/");
      statuses.push(r.status);
      await r.text();
    }
    expect(statuses.filter((s) => s === 502).length).toBe(2); // two failures, then ejected
    const clusters = await (await fetch(`http://${m.addresses.admin}/clusters`)).json();
    const pool = clusters.clusters.find((c: { name: string }) => c.name === "pool");
    const bad = pool.endpoints.find((e: { address: string }) => e.address.endsWith(`:${badPort}`));
    expect(bad.ejected).toBe(true);
    expect(bad.available).toBe(false);
    for (let i = 0; i < 4; i++) expect((await viaProxy(proxy, "http://pool/")).status).toBe(200);
    const metrics = await (await fetch(`http://${m.addresses.admin}/v1/mesher/metrics`)).text();
    expect(metrics).toContain(`outlier_ejections_total{service_name="pool",endpoint="127.0.0.1:${badPort}"} 1`);
  });
});

describe("rate limit", () => {
  const echo = startEchoApp("limited");
  stops.push(() => echo.stop(true));
  const { proxy } = sidecar({
    service: { name: "shop" },
    services: { limited: { endpoints: [`127.0.0.1:${echo.port}`], rateLimit: { rate: 0.01, burst: 3 } } },
  });

  test("answers 429 rate_limited above its rate", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await viaProxy(proxy, "http://limited/");
      statuses.push(r.status);
      if (r.status === 429) expect(r.headers.get("x-mesher-error")).toBe("rate_limited");
      await r.text();
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429, 429, 429]);
  });
});

describe("provider-side rate limit", () => {
  const echo = startEchoApp("promotion");
  stops.push(() => echo.stop(true));
  // The provider sidecar limits each caller service: shop may send 2, then gets 429s.
  const mesh = twoSidecars(echo.port!, { b: { rateLimit: { provider: { rate: 0.001, burst: 2 } } } });
  stops.push(() => mesh.stop());

  test("limits calls reaching the app per caller service", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await viaProxy(mesh.proxy, "http://promotion/");
      statuses.push(r.status);
      await r.text();
    }
    expect(statuses).toEqual([200, 200, 429, 429]);
    const metrics = await (await fetch(`http://${mesh.b.addresses.admin}/v1/mesher/metrics`)).text();
    expect(metrics).toContain('rate_limited_total{service_name="promotion",side="provider"} 2');
  });
});

describe("timeout and fault", () => {
  const slow = app(async (req) => {
    if (new URL(req.url).pathname === "/stream") {
      // Headers at once, then the body over ~400 ms: longer than the timeout.
      let n = 0;
      const body = new ReadableStream({
        async pull(c) {
          await Bun.sleep(100);
          if (n++ === 4) c.close();
          else c.enqueue(new TextEncoder().encode(`tick${n}\n`));
        },
      });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    }
    const ms = Number(new URL(req.url).searchParams.get("ms") ?? 0);
    await Bun.sleep(ms);
    return new Response("slow");
  });
  const { m: faulting, proxy } = sidecar({
    service: { name: "shop" },
    services: {
      slow: { endpoints: [`127.0.0.1:${slow.port}`], timeout: 150 },
      faulty: { endpoints: [`127.0.0.1:${slow.port}`], fault: { abort: { httpStatus: 418 } } },
    },
  });

  test("the service timeout answers 504 upstream_timeout; faster calls pass", async () => {
    const late = await viaProxy(proxy, "http://slow/?ms=1000");
    expect(late.status).toBe(504);
    expect(late.headers.get("x-mesher-error")).toBe("upstream_timeout");
    expect((await viaProxy(proxy, "http://slow/?ms=0")).status).toBe(200);
  });

  test("a streaming response is bounded to its headers, not cut mid-stream", async () => {
    const r = await viaProxy(proxy, "http://slow/stream");
    expect(r.status).toBe(200);
    expect(await r.text()).toBe("tick1\ntick2\ntick3\ntick4\n");
  });

  test("an injected abort answers its status with fault_injected", async () => {
    const r = await viaProxy(proxy, "http://faulty/");
    expect(r.status).toBe(418);
    expect(r.headers.get("x-mesher-error")).toBe("fault_injected");
    const metrics = await (await fetch(`http://${faulting.addresses.admin}/v1/mesher/metrics`)).text();
    expect(metrics).toContain('faults_injected_total{service_name="faulty",kind="abort"} 1');
  });
});

describe("load balancing", () => {
  const apps = ["a", "b", "c"].map((n) => {
    const s = startEchoApp(n);
    stops.push(() => s.stop(true));
    return s;
  });
  const { proxy } = sidecar({
    service: { name: "shop" },
    services: {
      weighted: {
        endpoints: apps.map((s, i) => ({ address: `127.0.0.1:${s.port}`, weight: [6, 3, 1][i] })),
        loadBalancer: "weightedRoundRobin",
      },
      hashed: {
        endpoints: apps.map((s) => `127.0.0.1:${s.port}`),
        loadBalancer: { kind: "consistentHash", header: "x-user" },
      },
      sticky: {
        endpoints: apps.map((s) => `127.0.0.1:${s.port}`),
        loadBalancer: { kind: "sessionSticky", cookie: "sid" },
      },
    },
  });
  const who = async (url: string, headers: Record<string, string> = {}) => {
    const r = await viaProxy(proxy, url, { headers });
    return { app: ((await r.json()) as { app: string }).app, cookie: r.headers.get("set-cookie") };
  };

  test("weighted round-robin splits 100 requests 60/30/10 exactly", async () => {
    const count: Record<string, number> = {};
    for (let i = 0; i < 100; i++) {
      const { app } = await who("http://weighted/");
      count[app] = (count[app] ?? 0) + 1;
    }
    expect(count).toEqual({ a: 60, b: 30, c: 10 });
  });

  test("consistent hash keeps a user on one endpoint; session cookies stick", async () => {
    for (const user of ["ann", "bob", "cy"]) {
      const first = (await who("http://hashed/", { "x-user": user })).app;
      for (let i = 0; i < 4; i++) expect((await who("http://hashed/", { "x-user": user })).app).toBe(first);
    }
    const start = await who("http://sticky/");
    expect(start.cookie).toMatch(/^sid=/);
    const cookie = start.cookie!.split(";")[0]!;
    for (let i = 0; i < 5; i++) expect((await who("http://sticky/", { cookie })).app).toBe(start.app);
  });
});
