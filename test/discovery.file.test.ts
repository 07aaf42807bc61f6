/**
 * The file registry on one machine, no external server: sidecars sharing one file register
 * their apps, callers spread over them, a failing app turns DOWN, a SIGKILLed sidecar's
 * instance expires within the ttl; plus the go-micro /registry API and per-host mode.
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Server } from "bun";
import type { Mesher } from "../src/server.ts";
import { waitFor } from "./etcdServer.ts";
import { spawnMesher, startApp, startSidecar, tempDir, viaProxy, type Spawned } from "./helpers.ts";

// Real servers and processes on 2 shared cores: give each test room (bunfig's timeout is not applied).
setDefaultTimeout(30_000);

function namedApp(name: string, healthy = () => true): Server<undefined> {
  return startApp((req) =>
    new URL(req.url).pathname === "/health"
      ? new Response(healthy() ? "status: ok" : "status: failing", { status: 200 })
      : Response.json({ app: name }),
  );
}

function endpoints(m: Mesher, service: string): Record<string, string> {
  return Object.fromEntries((m.clusters.get(service)?.endpoints ?? []).map((e) => [e.address, e.status]));
}

async function appOf(proxy: string, url: string): Promise<string> {
  const r = await viaProxy(proxy, url);
  expect(r.status).toBe(200);
  return ((await r.json()) as { app: string }).app;
}

describe("file registry: two sidecars on one machine", () => {
  const dir = tempDir();
  const path = join(dir, "registry.yaml");
  const registry = { kind: "file" as const, path, ttl: "1500ms", poll: "100ms" };
  let healthy1 = true;
  const app1 = namedApp("shop-1", () => healthy1);
  const app2 = namedApp("shop-2");
  const cart = namedApp("cart");
  let s1: Mesher;
  let s2: Spawned;
  let user: Mesher;

  beforeAll(async () => {
    s1 = startSidecar({
      service: { name: "shop", version: "1.0.0", ports: { http: app1.port! } },
      listen: { provider: "127.0.0.1:0" },
      registry,
      // The body check flips it: status 200 alone is not enough.
      healthCheck: [{ path: "/health", interval: "100ms", match: { status: 200, body: "status: ok" } }],
      // Per-host mode: cart runs on this machine too and is reached through the same sidecar.
      apps: [{ name: "cart", version: "3.0.0", ports: { http: cart.port! }, healthCheck: [{ interval: "100ms" }] }],
    });
    const file = join(dir, "shop2.json");
    writeFileSync(
      file,
      JSON.stringify({
        service: { name: "shop", version: "2.0.0", ports: { http: app2.port } },
        listen: { consumer: "127.0.0.1:0", provider: "127.0.0.1:0", admin: "127.0.0.1:0" },
        registry,
      }),
    );
    s2 = await spawnMesher(["-c", file]);
    // The caller names no shop: its first call looks shop up in the file.
    user = startSidecar({ service: { name: "web" }, registry });
  });

  afterAll(async () => {
    s2?.proc.kill("SIGKILL");
    await Promise.all([s1?.stop(), user?.stop()]);
    for (const a of [app1, app2, cart]) a.stop(true);
  });

  test("both register into one file and the caller spreads calls over both", async () => {
    await waitFor("a first call answered", async () => (await viaProxy(`http://${user.addresses.consumer}`, "http://shop/")).status === 200);
    await waitFor("two shop instances", () => Object.keys(endpoints(user, "shop")).length === 2);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add(await appOf(`http://${user.addresses.consumer}`, "http://shop/"));
    expect([...seen].sort()).toEqual(["shop-1", "shop-2"]);
    // The shared file is plain YAML a person can read.
    expect(readFileSync(path, "utf8")).toContain("shop:");
  });

  test("per-host mode: a second local app registers and is reached through the same sidecar", async () => {
    expect(await appOf(`http://${user.addresses.consumer}`, "http://cart/")).toBe("cart");
    expect(user.clusters.get("cart")!.endpoints.map((e) => [e.address, e.tags.version])).toEqual([
      [s1.addresses.provider!, "3.0.0"],
    ]);
  });

  test("a failing body check turns the instance DOWN and calls avoid it; passing turns it UP", async () => {
    healthy1 = false;
    await waitFor("shop-1 DOWN", () => endpoints(user, "shop")[s1.addresses.provider!] === "DOWN");
    for (let i = 0; i < 6; i++) expect(await appOf(`http://${user.addresses.consumer}`, "http://shop/")).toBe("shop-2");
    healthy1 = true;
    await waitFor("shop-1 UP", () => endpoints(user, "shop")[s1.addresses.provider!] === "UP");
  });

  test("a sidecar killed with SIGKILL disappears within the ttl", async () => {
    const t = Date.now();
    s2.proc.kill("SIGKILL");
    await waitFor("shop-2 gone", () => !(s2.provider! in endpoints(user, "shop")), 6000);
    expect(Date.now() - t).toBeLessThan(4000);
    expect(Object.keys(endpoints(user, "shop"))).toEqual([s1.addresses.provider!]);
  });

  test("SIGTERM deregisters at once (long before the ttl would)", async () => {
    const app3 = namedApp("shop-3");
    const file = join(dir, "shop3.json");
    writeFileSync(
      file,
      JSON.stringify({
        service: { name: "shop", version: "3.0.0", ports: { http: app3.port } },
        listen: { consumer: "127.0.0.1:0", provider: "127.0.0.1:0", admin: "127.0.0.1:0" },
        registry: { ...registry, ttl: "60s" },
        drainTimeout: "1s",
      }),
    );
    const s3 = await spawnMesher(["-c", file]);
    try {
      await waitFor("shop-3 registered", () => s3.provider! in endpoints(user, "shop"));
      s3.proc.kill("SIGTERM");
      expect(await s3.proc.exited).toBe(0);
      await waitFor("shop-3 gone", () => !(s3.provider! in endpoints(user, "shop")), 3000);
    } finally {
      s3.proc.kill("SIGKILL");
      app3.stop(true);
    }
  });

  test("go-micro's /registry API on the admin port writes through to the file", async () => {
    const admin = `http://${s1.addresses.admin}/registry`;
    const other = namedApp("legacy");
    try {
      const body = { Name: "legacy", Version: "0.9", Nodes: [{ Id: "legacy-1", Address: "127.0.0.1", Port: other.port }] };
      expect((await fetch(admin, { method: "POST", body: JSON.stringify(body) })).status).toBe(200);
      const got = await fetch(`${admin}?service=legacy`);
      expect(got.status).toBe(200);
      expect(await got.json()).toEqual([
        {
          name: "legacy",
          version: "0.9",
          metadata: {},
          nodes: [{ id: "legacy-1", address: "127.0.0.1", port: other.port, metadata: { version: "0.9", status: "UP" } }],
        },
      ]);
      const all = (await (await fetch(admin)).json()) as { name: string }[];
      expect(all.map((s) => s.name)).toEqual(expect.arrayContaining(["cart", "legacy", "shop"]));
      // Another sidecar on the machine routes to it (straight to the app: the node's address).
      expect(await appOf(`http://${user.addresses.consumer}`, "http://legacy/")).toBe("legacy");
      // Lowercase keys, as go-micro's own JSON writes them.
      const del = { name: "legacy", nodes: [{ id: "legacy-1" }] };
      expect((await fetch(admin, { method: "DELETE", body: JSON.stringify(del) })).status).toBe(200);
      expect((await fetch(`${admin}?service=legacy`)).status).toBe(404);
      await waitFor("legacy gone from the caller", () => user.clusters.get("legacy")?.endpoints.length === 0);
    } finally {
      other.stop(true);
    }
  });

  test("the /registry API refuses a bad body with a reason", async () => {
    const r = await fetch(`http://${s1.addresses.admin}/registry`, { method: "POST", body: JSON.stringify({ Name: "x" }) });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { message: string } }).error.message).toContain("nodes");
    const t = await fetch(`http://${s1.addresses.admin}/registry?ttl=soon`, {
      method: "POST",
      body: JSON.stringify({ name: "x", nodes: [{ id: "x1", address: "127.0.0.1:1" }] }),
    });
    expect(t.status).toBe(400);
  });

  test("a name nobody registered is refused: the registry is asked, then 403 (neither a service nor egress)", async () => {
    const r = await viaProxy(`http://${user.addresses.consumer}`, "http://nobody/");
    expect(r.status).toBe(403);
    expect(r.headers.get("x-mesher-error")).toBe("forbidden");
  });
});
