import { expect, test } from "bun:test";
import { resolveConfig } from "../config/resolve.ts";
import { appPorts } from "./apps.ts";
import { memoryRegistry } from "../../test/memoryRegistry.ts";
import { advertisedAddress, localApps, Registrar } from "./registrar.ts";

test("a wildcard bind is advertised as a routable address; others as they are", () => {
  expect(advertisedAddress("127.0.0.1:30111")).toBe("127.0.0.1:30111");
  expect(advertisedAddress("10.1.2.3:1")).toBe("10.1.2.3:1");
  for (const bound of ["0.0.0.0:30111", "[::]:30111"]) {
    const a = advertisedAddress(bound);
    expect(a.endsWith(":30111")).toBe(true);
    expect(a.startsWith("0.0.0.0") || a.startsWith("[::]")).toBe(false);
  }
});

test("per-host mode: the service and each app, each with its own checks and ports", () => {
  const config = resolveConfig({
    service: { name: "shop", version: "1.0", ports: { http: 8080 } },
    healthCheck: [{ path: "/ready" }],
    apps: [{ name: "cart", ports: { http: 8081 }, healthCheck: [{ protocol: "tcp" }] }, { name: "users", ports: { grpc: 9000 } }],
  });
  const apps = localApps(config);
  expect(apps.map((a) => [a.name, a.checks.map((c) => `${c.protocol}:${c.port}`)])).toEqual([
    ["shop", ["http:8080"]],
    ["cart", ["tcp:8081"]],
    ["users", []],
  ]);
  expect(appPorts(config, "cart")).toEqual({ http: 8081 });
  expect(appPorts(config, "CART:80")).toEqual({ http: 8081 });
  expect(appPorts(config, "shop")).toEqual({ http: 8080 });
  expect(appPorts(config, null)).toEqual({ http: 8080 });
});

test("an app without checks registers at once, UP, tagged with version and app", async () => {
  const registry = memoryRegistry();
  const r = new Registrar(registry, [{ name: "shop", version: "2.1", app: "demo", tags: { zone: "a" }, checks: [] }], "10.0.0.5:30111", "abcd1234");
  r.start();
  const deadline = Date.now() + 5000;
  while (!r.states()[0]!.registered && Date.now() < deadline) await Bun.sleep(5); // bounded poll
  expect(await registry.list("shop")).toEqual([
    { id: "shop-abcd1234", service: "shop", addresses: { http: "10.0.0.5:30111" }, tags: { zone: "a", version: "2.1", app: "demo" }, status: "UP" },
  ]);
  await r.stop();
  expect(await registry.list("shop")).toEqual([]);
});
