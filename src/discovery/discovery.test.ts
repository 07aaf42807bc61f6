import { describe, expect, test } from "bun:test";
import { resolveConfig } from "../config/resolve.ts";
import { ConfigError } from "../config/errors.ts";
import { ClusterManager } from "../upstream/clusters.ts";
import { Discovery } from "./discovery.ts";
import { memoryRegistry } from "../../test/memoryRegistry.ts";
import type { Instance, Registry } from "./types.ts";

const inst = (service: string, id: string, address: string, status: "UP" | "DOWN" = "UP"): Instance => ({
  id,
  service,
  addresses: { http: address },
  tags: { version: "1" },
  status,
});

describe("Discovery: registry -> ClusterManager", () => {
  test("watched services get the registry's endpoints beside static ones, with status", async () => {
    const reg = memoryRegistry();
    const clusters = new ClusterManager();
    clusters.setOrigin("static", { shop: [{ address: "10.0.0.1:80" }] });
    const values: number[] = [];
    const d = new Discovery(reg, clusters, 500, { set: (_l, v) => values.push(v) });
    d.sync(["shop"]);
    await reg.register(inst("shop", "s1", "10.0.0.2:80"));
    await reg.register(inst("shop", "s2", "10.0.0.3:80", "DOWN"));
    expect(clusters.get("shop")!.endpoints.map((e) => [e.address, e.origin, e.status])).toEqual([
      ["10.0.0.1:80", "static", "UP"],
      ["10.0.0.2:80", "memory", "UP"],
      ["10.0.0.3:80", "memory", "DOWN"],
    ]);
    // Endpoint objects keep their identity across updates (their state survives).
    const e2 = clusters.get("shop")!.endpoints[1];
    await reg.setStatus("shop", "s2", "UP");
    expect(clusters.get("shop")!.endpoints[1]).toBe(e2!);
    expect(clusters.get("shop")!.endpoints[2]!.status).toBe("UP");
    expect(values).toEqual([0]);
  });

  test("a registry that goes away leaves the last endpoints in service and says stale", async () => {
    const reg = memoryRegistry();
    const clusters = new ClusterManager();
    const values: number[] = [];
    const d = new Discovery(reg, clusters, 500, { set: (_l, v) => values.push(v) });
    d.sync(["shop"]);
    await reg.register(inst("shop", "s1", "10.0.0.2:80"));
    reg.fail(new Error("connection refused"));
    expect(clusters.get("shop")!.endpoints.map((e) => e.address)).toEqual(["10.0.0.2:80"]);
    expect(d.status()).toMatchObject({ kind: "memory", stale: true, reason: "connection refused" });
    expect(clusters.staleOrigins().has("memory")).toBe(true);
    reg.fail(undefined);
    await reg.register(inst("shop", "s3", "10.0.0.4:80"));
    expect(d.status().stale).toBe(false);
    expect(values).toEqual([0, 1, 0]);
  });

  test("an unknown service is looked up on demand; a name nobody registered is not kept", async () => {
    const reg = memoryRegistry();
    const clusters = new ClusterManager();
    new Discovery(reg, clusters, 500);
    await reg.register(inst("cart", "c1", "10.0.0.9:80"));
    expect((await clusters.discover("cart"))!.endpoints.map((e) => e.address)).toEqual(["10.0.0.9:80"]);
    expect(await clusters.discover("nobody")).toBeUndefined();
    expect(reg.watchCount()).toBe(1); // cart's watch stays; nobody's was dropped
    // Asked again at once: answered from the negative cache, no new watch.
    expect(await clusters.discover("nobody")).toBeUndefined();
    expect(reg.watchCount()).toBe(1);
  });

  test("a lookup waits no longer than lookupTimeout for a registry that never answers", async () => {
    const silent = { ...memoryRegistry(), watch: () => () => undefined } as Registry;
    const clusters = new ClusterManager();
    new Discovery(silent, clusters, 100);
    const t = performance.now();
    expect(await clusters.discover("shop")).toBeUndefined();
    expect(performance.now() - t).toBeLessThan(2000);
  });
});

describe("discovery config", () => {
  const base = { service: { name: "shop" } };
  test("registry kinds get their defaults", () => {
    const c = resolveConfig({ ...base, registry: { kind: "etcd" } });
    expect(c.registry).toEqual({
      kind: "etcd",
      endpoints: ["http://127.0.0.1:2379"],
      prefix: "/mesher/services",
      ttl: 10_000,
      lookupTimeout: 2000,
    });
    const h = resolveConfig({ ...base, healthCheck: [{ port: 8080 }] });
    expect(h.healthCheck).toEqual([{ port: 8080, protocol: "http", path: "/health", interval: 10_000, timeout: 2000 }]);
  });

  test("a user's registry object is accepted as it is", () => {
    const reg = memoryRegistry();
    expect(resolveConfig({ ...base, registry: reg }).registry).toBe(reg);
  });

  test("bad registry config names the path and what was expected", () => {
    const problems = (raw: unknown) => {
      try {
        resolveConfig(raw);
      } catch (err) {
        return (err as ConfigError).problems.map((p) => `${p.path}: ${p.expected}`);
      }
      return [];
    };
    expect(problems({ ...base, registry: { kind: "zookeeper" } }).join()).toContain("registry");
    expect(problems({ ...base, registry: { kind: "etcd", ttl: "100ms" } })).toEqual(["registry.ttl: a duration of at least 1s"]);
    expect(problems({ ...base, healthCheck: [{ protocol: "udp" }] })[0]).toContain("healthCheck[0].protocol");
    expect(problems({ ...base, apps: [{ name: "cart" }] })[0]).toContain("apps[0].ports");
    expect(problems({ ...base, registry: { kind: "dns", servers: ["dns.example"] } })[0]).toContain("registry.servers[0]: an IP address");
    expect(problems({ ...base, healthCheck: [{ path: "/h" }] })).toEqual(["healthCheck[0].port: a port (or service.ports.http)"]);
    expect(problems({ ...base, apps: [{ name: "shop", ports: { http: 1 } }] })).toEqual([
      "apps[0].name: a name no other local app (or service.name) has",
    ]);
  });
});

test("the discovery recipes are valid configs", async () => {
  const { loadConfig } = await import("../config/index.ts");
  for (const name of ["shop", "web"]) {
    const c = await loadConfig(`${import.meta.dir}/../../recipes/discovery/${name}.config.ts`);
    expect(c.registry).toMatchObject({ kind: "file", path: "/tmp/mesher-registry.yaml" });
  }
});
