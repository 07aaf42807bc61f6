import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { resolveConfig } from "../src/config/resolve.ts";
import { MeshError } from "../src/pipeline/errors.ts";
import { curl, spawnMesher, startEchoApp, startSidecar, tempDir } from "./helpers.ts";

describe("edge mode: external client -> gateway -> services", () => {
  const shop = startEchoApp("shop");
  const catalog = startEchoApp("catalog");
  const legacy = startEchoApp("legacy");
  // catalog sits behind its own sidecar: gateway -> sidecar (provider) -> app.
  const catalogSidecar = startSidecar({ service: { name: "catalog", ports: { http: catalog.port! } }, listen: { provider: "127.0.0.1:0" } });
  const seen: string[] = [];
  const gw = startSidecar({
    mode: "edge",
    service: { name: "gateway" },
    listen: { edge: "127.0.0.1:0" },
    services: {
      shop: { endpoints: [`127.0.0.1:${shop.port}`] },
      catalog: { endpoints: [catalogSidecar.addresses.provider!] },
      legacy: { endpoints: [`127.0.0.1:${legacy.port}`] },
    },
    ingress: [
      { host: "shop.example.com", apiPath: "^/api/", service: "shop" },
      { path: { prefix: "/catalog/" }, rewrite: { prefix: "/" }, service: "catalog" },
      { apiPath: "/old/.*", service: "legacy", redirectPath: "/v2/items", port: 8081 },
      { path: { exact: "/ghost" }, service: "ghost" },
    ],
    chains: {
      // The provider chain runs on the way in: an API-key check here guards every route.
      provider: [
        async function apiKey(ctx, next) {
          seen.push(`provider:${ctx.path}`);
          if (ctx.headers.get("x-api-key") === "bad") throw new MeshError("forbidden", "bad api key");
          await next();
        },
        "transport", // dropped in edge mode: the consumer chain sends upstream
      ],
      consumer: [
        "router",
        "loadBalance",
        async function stamp(ctx, next) {
          seen.push(`consumer:${ctx.service}${ctx.path}`);
          ctx.headers.set("x-via-gateway", "1");
          await next();
        },
        "transport",
      ],
    },
  });
  const edge = `http://${gw.addresses.edge}`;
  afterAll(async () => {
    await Promise.all([gw.stop(), catalogSidecar.stop()]);
    for (const s of [shop, catalog, legacy]) s.stop(true);
  });

  test("the Host and an apiPath regex pick the service; the path goes through as it is", async () => {
    const r = await curl(["-H", "Host: shop.example.com", `${edge}/api/cart?id=1`]);
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body);
    expect(body).toMatchObject({ app: "shop", path: "/api/cart?id=1" });
    expect(body.headers["x-via-gateway"]).toBe("1");
    expect(body.headers["x-forwarded-host"]).toBe("shop.example.com");
    expect(JSON.parse(body.headers["x-cse-context"])["x-cse-src-microservice"]).toBe("gateway");
    // Without the Host, the shop rule does not apply and nothing else matches /api/.
    const other = await curl(["-H", "Host: www.example.com", `${edge}/api/cart`]);
    expect(other.status).toBe(404);
  });

  test("a prefix rule rewrites the path and reaches the service through its sidecar", async () => {
    const r = await curl([`${edge}/catalog/items/7?full=1`]);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ app: "catalog", path: "/items/7?full=1" });
  });

  test("redirectPath replaces the path and port travels as X-Forwarded-Port", async () => {
    const r = await curl([`${edge}/old/items/3?q=x`]);
    const body = JSON.parse(r.body);
    expect(body).toMatchObject({ app: "legacy", path: "/v2/items?q=x" });
    expect(body.headers["x-forwarded-port"]).toBe("8081");
  });

  test("no matching rule: 404 JSON no_route", async () => {
    const r = await curl(["-D", "-", `${edge}/nowhere`]);
    expect(r.status).toBe(404);
    expect(r.body).toMatch(/x-mesher-error: no_route/i);
    const json = JSON.parse(r.body.slice(r.body.indexOf("{")));
    expect(json.error.code).toBe("no_route");
    expect(json.error.message).toContain("/nowhere");
  });

  test("a rule naming an unknown service answers unknown_service", async () => {
    const r = await curl([`${edge}/ghost`]);
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body).error.code).toBe("unknown_service");
  });

  test("the provider chain runs first and can refuse; the consumer chain runs after the rule", async () => {
    seen.length = 0;
    const r = await curl(["-H", "x-api-key: bad", `${edge}/catalog/x`]);
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).error.code).toBe("forbidden");
    expect(seen).toEqual(["provider:/catalog/x"]);
    seen.length = 0;
    await curl([`${edge}/catalog/x`]);
    expect(seen).toEqual(["provider:/catalog/x", "consumer:catalog/x"]);
  });

  test("an identity sent from outside is not trusted", async () => {
    const r = await curl(["-H", "Host: shop.example.com", "-H", 'x-cse-context: {"x-cse-src-microservice":"admin"}', `${edge}/api/x`]);
    expect(JSON.parse(JSON.parse(r.body).headers["x-cse-context"])["x-cse-src-microservice"]).toBe("gateway");
  });
});

describe("edge mode reload", () => {
  test("a reloaded config's ingress rules apply to the next request", async () => {
    const app = startEchoApp("orders");
    const config = (ingress: { apiPath: string; service: string }[]) => ({
      mode: "edge" as const,
      service: { name: "gw" },
      listen: { consumer: false as const, admin: false as const, edge: "127.0.0.1:0" },
      services: { orders: { endpoints: [`127.0.0.1:${app.port}`] } },
      ingress,
    });
    const gw = startSidecar(config([{ apiPath: "^/orders", service: "orders" }]));
    try {
      const edge = `http://${gw.addresses.edge}`;
      expect((await curl([`${edge}/v2/orders`])).status).toBe(404);
      gw.reload(resolveConfig(config([{ apiPath: "^/v2/orders", service: "orders" }])));
      expect(JSON.parse((await curl([`${edge}/v2/orders`])).body).app).toBe("orders");
      expect((await curl([`${edge}/orders`])).status).toBe(404);
    } finally {
      await gw.stop();
      app.stop(true);
    }
  });
});

describe("edge mode from the command line", () => {
  test("--mode edge opens the edge listener from a YAML config; consumer: false opens no consumer listener", async () => {
    const app = startEchoApp("orders");
    const dir = tempDir({
      "mesher.yaml": [
        "service: { name: gateway }",
        'listen: { consumer: false, admin: "127.0.0.1:0", edge: "127.0.0.1:0" }',
        `services: { orders: { endpoints: ["127.0.0.1:${app.port}"] } }`,
        "ingress:",
        "  - apiPath: ^/orders",
        "    service: orders",
      ].join("\n"),
    });
    const m = await spawnMesher(["--mode", "edge", "-c", join(dir, "mesher.yaml")]);
    try {
      const edge = /edge=(\S+)/.exec(m.lines.join("\n"))![1];
      expect(m.consumer).toBe("off");
      const r = await curl([`http://${edge}/orders/1`]);
      expect(JSON.parse(r.body)).toMatchObject({ app: "orders", path: "/orders/1" });
      expect((await curl([`http://${edge}/other`])).status).toBe(404);
    } finally {
      m.proc.kill();
      await m.proc.exited;
      app.stop(true);
    }
  });
});
