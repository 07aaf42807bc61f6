/**
 * A registry the user writes inline (an object with the Registry members) works as the
 * built-in ones do: self-registration, lookup of unknown services, staleness on /clusters.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { waitFor } from "./etcdServer.ts";
import { startEchoApp, startSidecar, viaProxy } from "./helpers.ts";
import { memoryRegistry } from "./memoryRegistry.ts";

describe("inline user registry", () => {
  const registry = memoryRegistry();
  const app = startEchoApp("shop");
  const provider = startSidecar({
    service: { name: "shop", version: "4.2.0", ports: { http: app.port! } },
    listen: { provider: "127.0.0.1:0" },
    registry,
  });
  const caller = startSidecar({ service: { name: "web" }, registry });
  afterAll(async () => {
    await Promise.all([provider.stop(), caller.stop()]);
    app.stop(true);
  });

  test("the provider registers into it and the caller finds shop through it", async () => {
    await waitFor("shop registered", async () => (await registry.list("shop")).length === 1);
    const r = await viaProxy(`http://${caller.addresses.consumer}`, "http://shop/x");
    expect(r.status).toBe(200);
    expect(((await r.json()) as { app: string }).app).toBe("shop");
    const [i] = await registry.list("shop");
    expect(i).toMatchObject({ service: "shop", addresses: { http: provider.addresses.provider }, tags: { version: "4.2.0" }, status: "UP" });
    const clusters = (await (await fetch(`http://${caller.addresses.admin}/clusters`)).json()) as {
      registry: { kind: string; stale: boolean; watched: string[] };
    };
    expect(clusters.registry).toMatchObject({ kind: "memory", stale: false, watched: ["shop"] });
  });

  test("when it fails, calls still reach the last known endpoints and /clusters says stale", async () => {
    registry.fail(new Error("registry unreachable"));
    try {
      const r = await viaProxy(`http://${caller.addresses.consumer}`, "http://shop/x");
      expect(r.status).toBe(200);
      const body = (await (await fetch(`http://${caller.addresses.admin}/clusters`)).json()) as {
        registry: { stale: boolean; reason: string };
        clusters: { name: string; endpoints: { stale: boolean }[] }[];
      };
      expect(body.registry).toMatchObject({ stale: true, reason: "registry unreachable" });
      expect(body.clusters.find((c) => c.name === "shop")!.endpoints[0]!.stale).toBe(true);
    } finally {
      registry.fail(undefined);
    }
  });

  test("a graceful stop deregisters", async () => {
    await provider.stop();
    expect(await registry.list("shop")).toEqual([]);
  });
});
