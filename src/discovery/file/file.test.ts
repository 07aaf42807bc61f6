import { afterEach, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileRegistry } from "./file.ts";
import type { Instance } from "../types.ts";

// Real servers and processes on 2 shared cores: give each test room (bunfig's timeout is not applied).
setDefaultTimeout(30_000);

const dir = () => mkdtempSync(join(tmpdir(), "mesher-file-registry-"));
const inst = (service: string, id: string, port = 1000): Instance => ({
  id,
  service,
  addresses: { http: `127.0.0.1:${port}` },
  tags: { version: "1" },
  status: "UP",
});
const opened: FileRegistry[] = [];
const open = (path: string, ttl = 10_000) => {
  const r = new FileRegistry({ path, ttl, poll: 50 });
  opened.push(r);
  return r;
};
afterEach(async () => {
  await Promise.all(opened.splice(0).map((r) => r.close()));
});

/** Waits for a watch to report a list that satisfies `ok`. */
function until(r: FileRegistry, service: string, ok: (l: Instance[]) => boolean): Promise<Instance[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no matching update of ${service}`)), 5000);
    const stop = r.watch(service, {
      update: (l) => {
        if (!ok(l)) return;
        clearTimeout(timer);
        stop();
        resolve(l);
      },
      error: () => undefined,
    });
  });
}

describe("file registry", () => {
  test("concurrent writers sharing one file lose no registration", async () => {
    const path = join(dir(), "registry.json");
    const a = open(path);
    const b = open(path);
    await Promise.all(
      Array.from({ length: 15 }, (_, i) => [a.register(inst("shop", `a${i}`, 2000 + i)), b.register(inst("shop", `b${i}`, 3000 + i))]).flat(),
    );
    const ids = (await a.list("shop")).map((i) => i.id).sort();
    expect(ids).toHaveLength(30);
    // No temp or lock file is left behind.
    const { readdirSync } = await import("node:fs");
    expect(readdirSync(join(path, ".."))).toEqual(["registry.json"]);
  });

  test("a watch pushes registrations, status changes and removals of another writer", async () => {
    const path = join(dir(), "registry.yaml");
    const reader = open(path);
    const writer = open(path);
    const seen = until(reader, "shop", (l) => l.length === 1);
    await writer.register(inst("shop", "s1"));
    expect((await seen)[0]!.id).toBe("s1");
    const down = until(reader, "shop", (l) => l[0]?.status === "DOWN");
    await writer.setStatus("shop", "s1", "DOWN");
    await down;
    const gone = until(reader, "shop", (l) => l.length === 0);
    await writer.deregister("shop", "s1");
    await gone;
  });

  test("a registration not renewed (its sidecar died) expires after the ttl; a renewed one stays", async () => {
    const path = join(dir(), "registry.json");
    const dying = new FileRegistry({ path, ttl: 300, poll: 50 });
    const living = open(path, 300);
    await dying.register(inst("shop", "dies"));
    await living.register(inst("shop", "lives", 1001));
    await dying.close(); // as if killed: no deregistration, no renewal
    const reader = open(path);
    const left = await until(reader, "shop", (l) => l.length === 1);
    expect(left[0]!.id).toBe("lives");
  });

  test("a registration with its own ttl (go-micro ?ttl=) is not kept alive", async () => {
    const path = join(dir(), "registry.json");
    const r = open(path, 60_000);
    await r.register(inst("shop", "short"), { ttl: 1, keepAlive: false });
    expect((await r.list("shop")).length).toBe(1);
    await until(r, "shop", (l) => l.length === 0);
  });

  test("a directory of hand-written files is read and merged; registrations go to registrations.json", async () => {
    const d = dir();
    writeFileSync(
      join(d, "static.yaml"),
      "services:\n  shop:\n    - { id: hand-1, address: 127.0.0.1:7001, tags: { zone: a } }\n    - { address: 127.0.0.1:7002, status: DOWN }\n",
    );
    writeFileSync(join(d, "more.json"), JSON.stringify({ services: { cart: [{ id: "c1", addresses: { http: "127.0.0.1:7100" } }] } }));
    writeFileSync(join(d, "notes.txt"), "not a registry file");
    const r = open(d);
    expect(await r.list("shop")).toEqual([
      { id: "hand-1", service: "shop", addresses: { http: "127.0.0.1:7001" }, tags: { zone: "a" }, status: "UP" },
      { id: "127.0.0.1:7002", service: "shop", addresses: { http: "127.0.0.1:7002" }, tags: {}, status: "DOWN" },
    ]);
    await r.register(inst("shop", "mine", 7003));
    expect((await r.list("shop")).map((i) => i.id).sort()).toEqual(["127.0.0.1:7002", "hand-1", "mine"]);
    expect(await r.services()).toEqual(["cart", "shop"]);
    expect(readFileSync(join(d, "registrations.json"), "utf8")).toContain('"mine"');
  });

  test("a broken file makes watches report an error and keeps the last list", async () => {
    const path = join(dir(), "registry.json");
    const r = open(path);
    await r.register(inst("shop", "s1"));
    const errors: Error[] = [];
    const updates: Instance[][] = [];
    r.watch("shop", { update: (l) => updates.push(l), error: (e) => errors.push(e) });
    await until(r, "shop", (l) => l.length === 1);
    writeFileSync(path, "{ not json");
    const deadline = Date.now() + 5000;
    while (errors.length === 0 && Date.now() < deadline) await Bun.sleep(20); // bounded poll
    expect(errors.length).toBeGreaterThan(0);
    expect(updates.at(-1)!.map((i) => i.id)).toEqual(["s1"]);
  });
});

test("a file caught empty mid-write keeps the last list (a watch never empties the cluster)", async () => {
  const path = join(dir(), "registry.json");
  const r = open(path);
  await r.register(inst("shop", "s1"));
  const updates: Instance[][] = [];
  const errors: Error[] = [];
  r.watch("shop", { update: (l) => updates.push(l), error: (e) => errors.push(e) });
  await until(r, "shop", (l) => l.length === 1);
  writeFileSync(path, "");
  const deadline = Date.now() + 5000;
  while (errors.length === 0 && Date.now() < deadline) await Bun.sleep(20); // bounded poll
  expect(errors[0]?.message).toContain("is empty");
  expect(updates.every((l) => l.length === 1)).toBe(true);
  await r.close();
});
