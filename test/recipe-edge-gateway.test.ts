import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { curl, ROOT, waitForLine } from "./helpers.ts";

for (const config of ["gateway.config.ts", "envoy.config.ts"]) describe(`recipes/edge-gateway (${config}): one command, two services behind the gateway`, () => {
  let proc: Subprocess<"ignore", "pipe", "pipe">;
  let edge = "";
  beforeAll(async () => {
    proc = Bun.spawn(["bun", "recipes/edge-gateway/run.ts"], {
      cwd: ROOT,
      env: { ...process.env, CONFIG: config, EDGE: "127.0.0.1:0", ADMIN: "127.0.0.1:0", SHOP_PORT: "0", CATALOG_PORT: "0" },
      stdout: "pipe",
      stderr: "pipe",
      stdin: "ignore",
    });
    edge = (await waitForLine(proc.stdout, /listening .* edge=(\S+)/))[1]!;
  });
  afterAll(async () => {
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  });

  test("the README's curls do what it says", async () => {
    const shop = JSON.parse((await curl(["-H", "Host: shop.example.com", `http://${edge}/cart`])).body);
    expect(shop).toMatchObject({ service: "shop", path: "/cart", caller: "gateway" });
    expect(JSON.parse((await curl([`http://${edge}/catalog/items/7`])).body)).toMatchObject({ service: "catalog", path: "/items/7" });
    expect(JSON.parse((await curl([`http://${edge}/shop/orders`])).body)).toMatchObject({ service: "shop", path: "/shop/orders" });
    const none = await curl([`http://${edge}/nowhere`]);
    expect(none.status).toBe(404);
    expect(JSON.parse(none.body).error.code).toBe("no_route");
    if (config === "gateway.config.ts") expect((await curl(["-H", "x-api-key: revoked", `http://${edge}/shop/x`])).status).toBe(403);
  });
});
