import { afterAll, describe, expect, test } from "bun:test";
import { startEchoApp, twoSidecars, viaProxy } from "./helpers.ts";

describe("admin API", () => {
  const app = startEchoApp("promotion");
  const mesh = twoSidecars(app.port!, {
    a: {
      service: { name: "shop", version: "1.0.0", app: "demo" },
      handlers: { stampFactory: () => async function stamp(_ctx, next) { await next(); } },
    },
  });
  const admin = `http://${mesh.a.addresses.admin}`;
  afterAll(async () => {
    await mesh.stop();
    app.stop(true);
  });

  test("health, version and ready", async () => {
    const h = await fetch(`${admin}/v1/mesher/health`);
    expect(h.status).toBe(200);
    expect(await h.json()).toMatchObject({ serviceName: "shop", version: "1.0.0", status: "green" });
    const v = await (await fetch(`${admin}/v1/mesher/version`)).json();
    expect(v.version).toMatch(/^\d+\.\d+\.\d+/);
    const r = await fetch(`${admin}/ready`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toStartWith("text/plain");
    expect(await r.text()).toBe("LIVE\n");
  });

  test("metrics count requests by status with Mesher's names and labels", async () => {
    for (let i = 0; i < 3; i++) await (await viaProxy(mesh.proxy, "http://promotion/ok")).text();
    await (await viaProxy(mesh.proxy, "http://nosuch/x")).text();
    const text = await (await fetch(`${admin}/v1/mesher/metrics`)).text();
    expect(text).toContain('requests_total{service_name="promotion",app="demo",version=""} 3');
    expect(text).toContain('successes_total{service_name="promotion",app="demo",version=""} 3');
    expect(text).toContain('status_4xx{service_name="nosuch",app="demo",version=""} 1');
    expect(text).toContain("# TYPE status_5xx counter");
    expect(text).toMatch(/request_latency_seconds_bucket\{le="0\.5",service_name="promotion",app="demo",version=""\} 3/);
    expect(text).toContain("start_time_seconds");
  });

  test("clusters lists services and endpoint state", async () => {
    const c = await (await fetch(`${admin}/clusters`)).json();
    expect(c.clusters).toEqual([
      {
        name: "promotion",
        endpoints: [
          expect.objectContaining({ address: mesh.b.addresses.provider, status: "UP", available: true, ejected: false, origin: "static" }),
        ],
      },
    ]);
  });

  test("config_dump shows the resolved config with functions by name", async () => {
    const d = await (await fetch(`${admin}/config_dump`)).json();
    expect(d.version).toBe(1);
    expect(d.config.service.name).toBe("shop");
    expect(d.config.handlers.stampFactory).toBe("[function stampFactory]");
    expect(d.config.drainTimeout).toBe(30000);
  });

  test("routeRule of a service without rules is 404 as in Mesher; unknown admin paths are JSON 404", async () => {
    const r = await fetch(`${admin}/v1/mesher/routeRule/promotion`);
    expect(r.status).toBe(404);
    expect(await r.text()).toBe("promotion routeRule not found");
    const n = await fetch(`${admin}/nope`);
    expect(n.status).toBe(404);
    expect((await n.json()).error.code).toBe("not_found");
  });
});
