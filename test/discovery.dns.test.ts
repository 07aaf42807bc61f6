/**
 * The dns registry against a real DNS server on loopback (npm dns2): A records at the
 * configured port, SRV records with their own ports, and refresh when the TTL runs out.
 */
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import type { Mesher } from "../src/server.ts";
import { startDns } from "./dnsServer.ts";
import { waitFor } from "./etcdServer.ts";
import { startApp, startSidecar, viaProxy } from "./helpers.ts";

// Real servers and processes on 2 shared cores: give each test room (bunfig's timeout is not applied).
setDefaultTimeout(30_000);

describe("dns registry", async () => {
  const dns = await startDns();
  const a = startApp(() => Response.json({ app: "a" }));
  const b = startApp(() => Response.json({ app: "b" }));
  const sidecars: Mesher[] = [];
  afterAll(async () => {
    await Promise.all(sidecars.map((s) => s.stop()));
    a.stop(true);
    b.stop(true);
    await dns.close();
  });
  const registry = {
    kind: "dns" as const,
    servers: [dns.address],
    suffix: ".default.svc.cluster.local",
    minRefresh: "100ms",
  };

  test("A records: a name static config does not know is resolved on first call", async () => {
    dns.zone.set("shop.default.svc.cluster.local", { A: [{ address: "127.0.0.1", ttl: 1 }] });
    const user = startSidecar({ service: { name: "web" }, registry: { ...registry, port: a.port! } });
    sidecars.push(user);
    const r = await viaProxy(`http://${user.addresses.consumer}`, "http://shop/");
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ app: "a" });
    expect(user.clusters.get("shop")!.endpoints.map((e) => [e.address, e.origin])).toEqual([[`127.0.0.1:${a.port}`, "dns"]]);
    expect(dns.queries).toContain("A shop.default.svc.cluster.local");
  });

  test("SRV records carry the port; a changed answer is picked up when the TTL runs out", async () => {
    dns.zone.set("_http._tcp.cart.default.svc.cluster.local", { SRV: [{ target: "cart-1.local", port: a.port!, ttl: 1 }] });
    dns.zone.set("cart-1.local", { A: [{ address: "127.0.0.1", ttl: 1 }] });
    const user = startSidecar({ service: { name: "web" }, registry, services: { cart: {} } });
    sidecars.push(user);
    await waitFor("cart resolved", () => user.clusters.get("cart")?.endpoints.length === 1);
    expect(await (await viaProxy(`http://${user.addresses.consumer}`, "http://cart/")).json()).toEqual({ app: "a" });
    dns.zone.set("_http._tcp.cart.default.svc.cluster.local", { SRV: [{ target: "127.0.0.1", port: b.port!, ttl: 1 }] });
    await waitFor("cart moved to b", () => user.clusters.get("cart")?.endpoints[0]?.address === `127.0.0.1:${b.port}`, 5000);
    expect(await (await viaProxy(`http://${user.addresses.consumer}`, "http://cart/")).json()).toEqual({ app: "b" });
  });

  test("a name DNS does not know is refused (403: neither a service nor egress); the dns registry takes no registrations", async () => {
    const user = startSidecar({
      service: { name: "web", ports: { http: a.port! } },
      listen: { provider: "127.0.0.1:0" },
      registry,
    });
    sidecars.push(user);
    const r = await viaProxy(`http://${user.addresses.consumer}`, "http://nothere/");
    expect(r.headers.get("x-mesher-error")).toBe("forbidden");
    expect(user.discovery!.status().registrations).toEqual([]);
    const post = await fetch(`http://${user.addresses.admin}/registry`, {
      method: "POST",
      body: JSON.stringify({ name: "x", nodes: [{ id: "x1", address: "127.0.0.1:1" }] }),
    });
    expect(post.status).toBe(400);
  });
});
