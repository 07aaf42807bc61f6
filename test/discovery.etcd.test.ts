/**
 * Acceptance with a real etcd: two instances of shop, each behind its own sidecar, register
 * themselves; a caller's sidecar spreads calls over both; an app that stops turns DOWN and
 * gets no more calls; etcd restarting loses no registration; a sidecar killed with SIGKILL
 * disappears within the lease TTL.
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Server } from "bun";
import type { Mesher } from "../src/server.ts";
import { startEtcd, waitFor, type EtcdServer } from "./etcdServer.ts";
import { spawnMesher, startApp, startSidecar, tempDir, viaProxy, type Spawned } from "./helpers.ts";

// Real servers and processes on 2 shared cores: give each test room (bunfig's timeout is not applied).
setDefaultTimeout(30_000);

const TTL = "2s";
const INTERVAL = "200ms";

function shopApp(name: string): Server<undefined> {
  return startApp((req) => (new URL(req.url).pathname === "/health" ? new Response("ok") : Response.json({ app: name })));
}

/** Endpoints of `service` as the caller's sidecar sees them: address -> status. */
function endpoints(m: Mesher, service: string): Record<string, string> {
  return Object.fromEntries((m.clusters.get(service)?.endpoints ?? []).map((e) => [e.address, e.status]));
}

describe("etcd: register, spread, DOWN on failed health check, SIGKILL, etcd restart", () => {
  let etcd: EtcdServer;
  const app1 = shopApp("shop-1");
  let app2 = shopApp("shop-2");
  let s1: Mesher;
  let s2: Spawned;
  let user: Mesher;
  const registry = () => ({ kind: "etcd" as const, endpoints: [etcd.url], prefix: "/mesher-test", ttl: TTL });

  beforeAll(async () => {
    etcd = await startEtcd();
    s1 = startSidecar({
      service: { name: "shop", version: "1.0.0", ports: { http: app1.port! } },
      listen: { provider: "127.0.0.1:0" },
      registry: registry(),
      healthCheck: [{ protocol: "http", path: "/health", interval: INTERVAL, timeout: "500ms" }],
    });
    const dir = tempDir();
    const file = join(dir, "shop2.json");
    writeFileSync(
      file,
      JSON.stringify({
        service: { name: "shop", version: "2.0.0", ports: { http: app2.port } },
        listen: { consumer: "127.0.0.1:0", provider: "127.0.0.1:0", admin: "127.0.0.1:0" },
        registry: registry(),
        healthCheck: [{ protocol: "tcp", interval: INTERVAL, timeout: "500ms" }],
      }),
    );
    s2 = await spawnMesher(["-c", file]);
    // The caller names no endpoints of shop: it learns them from etcd. Its retry policy moves a
    // call that meets the dying app to the other instance.
    user = startSidecar({ service: { name: "web" }, registry: registry(), services: { shop: { retry: { attempts: 2 } } } });
  });

  afterAll(async () => {
    s2?.proc.kill("SIGKILL");
    await Promise.all([s1?.stop(), user?.stop()]);
    app1.stop(true);
    app2.stop(true);
    await etcd?.destroy();
  });

  test("both instances register and the caller spreads calls over both", async () => {
    await waitFor("both shop instances in the caller's cluster", () => Object.keys(endpoints(user, "shop")).length === 2);
    expect(endpoints(user, "shop")).toEqual({ [s1.addresses.provider!]: "UP", [s2.provider!]: "UP" });
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const r = await viaProxy(`http://${user.addresses.consumer}`, "http://shop/items");
      expect(r.status).toBe(200);
      seen.add(((await r.json()) as { app: string }).app);
    }
    expect([...seen].sort()).toEqual(["shop-1", "shop-2"]);
    // The registered instance carries the sidecar's version and app as tags.
    const byAddress = new Map(user.clusters.get("shop")!.endpoints.map((e) => [e.address, e.tags]));
    expect(byAddress.get(s1.addresses.provider!)).toMatchObject({ version: "1.0.0", app: "default" });
    expect(byAddress.get(s2.provider!)).toMatchObject({ version: "2.0.0" });
  });

  test("an app that stops turns DOWN and gets no more calls; it turns UP when it is back", async () => {
    const port = app2.port!;
    // Calls keep going while the app stops: none fails (the retry takes the other instance).
    const statuses: number[] = [];
    let calling = true;
    const caller = (async () => {
      while (calling) statuses.push((await viaProxy(`http://${user.addresses.consumer}`, "http://shop/items")).status);
    })();
    await waitFor("calls under way", () => statuses.length >= 5);
    const stoppedAt = Date.now();
    app2.stop(true);
    await waitFor("shop-2 DOWN", () => endpoints(user, "shop")[s2.provider!] === "DOWN");
    // One 200 ms health interval, then etcd's push; loose, as the machine is shared.
    expect(Date.now() - stoppedAt).toBeLessThan(3000);
    calling = false;
    await caller;
    expect(statuses.filter((x) => x !== 200)).toEqual([]);
    for (let i = 0; i < 10; i++) {
      const r = await viaProxy(`http://${user.addresses.consumer}`, "http://shop/items");
      expect(r.status).toBe(200);
      expect(((await r.json()) as { app: string }).app).toBe("shop-1");
    }
    const admin = (await (await fetch(`http://${user.addresses.admin}/clusters`)).json()) as {
      clusters: { name: string; endpoints: { address: string; status: string; available: boolean; origin: string }[] }[];
    };
    const down = admin.clusters.find((c) => c.name === "shop")!.endpoints.find((e) => e.address === s2.provider);
    expect(down).toMatchObject({ status: "DOWN", available: false, origin: "etcd" });
    // Same port again: the sidecar's config points there.
    app2 = startApp((req) => (new URL(req.url).pathname === "/health" ? new Response("ok") : Response.json({ app: "shop-2" })), port);
    await waitFor("shop-2 UP again", () => endpoints(user, "shop")[s2.provider!] === "UP");
  });

  test("etcd restarting loses no registration; the caller says stale meanwhile", async () => {
    await etcd.stop();
    await waitFor("caller marks etcd stale", async () => {
      const body = (await (await fetch(`http://${user.addresses.admin}/clusters`)).json()) as { registry: { stale: boolean } };
      return body.registry.stale;
    });
    const metrics = await (await fetch(`http://${user.addresses.admin}/v1/mesher/metrics`)).text();
    expect(metrics).toContain('mesher_registry_stale{registry="etcd"} 1');
    // The last known endpoints stay in service.
    const r = await viaProxy(`http://${user.addresses.consumer}`, "http://shop/items");
    expect(r.status).toBe(200);
    await etcd.start();
    await waitFor("caller fresh again", async () => {
      const body = (await (await fetch(`http://${user.addresses.admin}/clusters`)).json()) as { registry: { stale: boolean } };
      return !body.registry.stale;
    });
    const list = await user.discovery!.registry.list("shop");
    expect(list.map((i) => i.addresses.http).sort()).toEqual([s1.addresses.provider!, s2.provider!].sort());
    const metricsAfter = await (await fetch(`http://${user.addresses.admin}/v1/mesher/metrics`)).text();
    expect(metricsAfter).toContain('mesher_registry_stale{registry="etcd"} 0');
  });

  test("a sidecar killed with SIGKILL disappears within the lease TTL", async () => {
    const killedAt = Date.now();
    s2.proc.kill("SIGKILL");
    await waitFor("shop-2 gone", () => !(s2.provider! in endpoints(user, "shop")), 8000);
    // The lease is 2 s; etcd expires leases on its own clock: allow it a few seconds more.
    expect(Date.now() - killedAt).toBeLessThan(6000);
    expect(Object.keys(endpoints(user, "shop"))).toEqual([s1.addresses.provider!]);
  });

  test("a graceful stop deregisters at once", async () => {
    await s1.stop();
    await waitFor("shop-1 gone", () => !(s1.addresses.provider! in endpoints(user, "shop")), 3000);
  });
});
