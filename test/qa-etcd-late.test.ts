/**
 * etcd down when the sidecars start, up later: registrations and watches catch up, and a call
 * that got 503 registry_unavailable meanwhile succeeds once etcd answers.
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { startEtcd, waitFor } from "./etcdServer.ts";
import { startApp, startSidecar, viaProxy } from "./helpers.ts";

setDefaultTimeout(30_000);

test("sidecars started before etcd register and find each other once it is up", async () => {
  const etcd = await startEtcd();
  await etcd.stop(); // ports and data dir kept: start() brings it up on the same URL
  const app = startApp(() => Response.json({ app: "shop" }));
  const registry = { kind: "etcd" as const, endpoints: [etcd.url], prefix: "/mesher-late", ttl: "2s", lookupTimeout: "10s" };
  const shop = startSidecar({ service: { name: "shop", ports: { http: app.port! } }, listen: { provider: "127.0.0.1:0" }, registry });
  const web = startSidecar({ service: { name: "web" }, listen: { consumer: "127.0.0.1:0" }, registry });
  const call = () => viaProxy(`http://${web.addresses.consumer}`, "http://shop/items");
  try {
    const down = await call();
    expect(down.status).toBe(503);
    expect(down.headers.get("x-mesher-error")).toBe("registry_unavailable");

    await etcd.start();
    const ok = await waitFor("a call to shop succeeding once etcd is up", async () => {
      const r = await call();
      return r.status === 200 ? r : undefined;
    });
    expect(((await ok.json()) as { app: string }).app).toBe("shop");
  } finally {
    await Promise.all([shop.stop(), web.stop()]);
    app.stop(true);
    await etcd.destroy();
  }
});
