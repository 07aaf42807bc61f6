import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { startEtcd, waitFor, type EtcdServer } from "../../../test/etcdServer.ts";
import { EtcdRegistry } from "./etcd.ts";
import { Registrar } from "../registrar.ts";
import type { Instance } from "../types.ts";

// Real servers and processes on 2 shared cores: give each test room (bunfig's timeout is not applied).
setDefaultTimeout(30_000);

const inst = (service: string, id: string): Instance => ({
  id,
  service,
  addresses: { http: `127.0.0.1:${1000 + id.length}` },
  tags: { version: "1" },
  status: "UP",
});

describe("etcd registry (real etcd)", () => {
  let etcd: EtcdServer;
  const open: EtcdRegistry[] = [];
  const registry = () => {
    const r = new EtcdRegistry({ endpoints: [etcd.url], prefix: "/unit", ttl: 2000 });
    open.push(r);
    return r;
  };
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await Promise.all(open.map((r) => r.close()));
    await etcd?.destroy();
  });

  test("instances live under <prefix>/<service>/<id>; services() lists them", async () => {
    const r = registry();
    await Promise.all([r.register(inst("shop", "a")), r.register(inst("shop", "bb")), r.register(inst("cart", "c"))]);
    expect((await r.list("shop")).map((i) => i.id).sort()).toEqual(["a", "bb"]);
    expect(await r.services()).toEqual(["cart", "shop"]);
    const raw = await fetch(`${etcd.url}/v3/kv/range`, {
      method: "POST",
      body: JSON.stringify({ key: btoa("/unit/shop/a") }),
    }).then((x) => x.json() as Promise<{ kvs: { value: string; lease: string }[] }>);
    expect(JSON.parse(atob(raw.kvs[0]!.value))).toMatchObject({ id: "a", service: "shop", status: "UP" });
    expect(raw.kvs[0]!.lease).toBeDefined(); // attached to the sidecar's lease
  });

  test("a watch sees another process's changes; status set by another keeps the owner's lease", async () => {
    const owner = registry();
    const other = registry();
    const seen: string[] = [];
    const stop = other.watch("pay", { update: (l) => seen.push(l.map((i) => `${i.id}:${i.status}`).join()), error: () => undefined });
    await owner.register(inst("pay", "p1"));
    await waitFor("p1 UP seen", () => seen.includes("p1:UP"));
    await other.setStatus("pay", "p1", "DOWN");
    await waitFor("p1 DOWN seen", () => seen.includes("p1:DOWN"));
    // The owner goes away without deregistering: the lease still takes the key with it.
    await owner.close();
    await waitFor("p1 expired", () => seen.at(-1) === "", 8000);
    stop();
  });

  test("a registration with its own ttl (go-micro ?ttl=) is not kept alive", async () => {
    const r = registry();
    await r.register(inst("tmp", "t1"), { ttl: 1, keepAlive: false });
    expect((await r.list("tmp")).length).toBe(1);
    await waitFor("t1 expired", async () => (await r.list("tmp")).length === 0, 8000);
  });

  test("an etcd that lost its data gets the registrations back (new lease)", async () => {
    const r = registry();
    await r.register(inst("keep", "k1"));
    const watcher = registry();
    const seen: number[] = [];
    watcher.watch("keep", { update: (l) => seen.push(l.length), error: () => undefined });
    await waitFor("k1 seen", () => seen.at(-1) === 1);
    await etcd.wipe();
    await etcd.start();
    await waitFor("k1 registered again", async () => (await r.list("keep")).length === 1, 10_000);
    await waitFor("the watcher sees it again", () => seen.at(-1) === 1, 5000);
  }, 30_000);

  test("deregister removes at once", async () => {
    const r = registry();
    await r.register(inst("gone", "g1"));
    await r.deregister("gone", "g1");
    expect(await r.list("gone")).toEqual([]);
  });

  test("a sidecar that starts while etcd is down registers once etcd is back", async () => {
    await etcd.stop();
    const r = registry();
    const registrar = new Registrar(r, [{ name: "late", version: "1", app: "a", tags: {}, checks: [] }], "127.0.0.1:4000", "x1");
    registrar.start();
    try {
      await waitFor("a registry error noted", () => registrar.states()[0]!.reason?.startsWith("registry:"));
      expect(registrar.states()[0]!.registered).toBe(false);
      await etcd.start();
      await waitFor("registered", () => registrar.states()[0]!.registered, 15_000);
      expect((await r.list("late")).map((i) => i.id)).toEqual(["late-x1"]);
    } finally {
      await registrar.stop();
    }
    expect(await r.list("late")).toEqual([]);
  });
});
