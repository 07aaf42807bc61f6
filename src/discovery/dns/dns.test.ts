import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { startDns } from "../../../test/dnsServer.ts";
import { waitFor } from "../../../test/etcdServer.ts";
import { DnsRegistry } from "./dns.ts";

setDefaultTimeout(30_000);

describe("dns registry (real DNS server on loopback)", async () => {
  const dns = await startDns();
  const registries: DnsRegistry[] = [];
  const open = (o: Partial<ConstructorParameters<typeof DnsRegistry>[0]> = {}) => {
    const r = new DnsRegistry({ servers: [dns.address], suffix: ".svc", port: 8080, srv: "_http._tcp.{name}", minRefresh: 100, maxRefresh: 30_000, ...o });
    registries.push(r);
    return r;
  };
  afterAll(async () => {
    await Promise.all(registries.map((r) => r.close()));
    await dns.close();
  });

  test("A and AAAA answers become instances at the configured port", async () => {
    dns.zone.set("shop.svc", { A: [{ address: "10.0.0.1", ttl: 30 }], AAAA: [{ address: "fd00::1", ttl: 30 }] });
    const list = await open().list("shop");
    expect(list.map((i) => i.addresses.http)).toEqual(["10.0.0.1:8080", "[fd00::1]:8080"]);
    expect(list[0]).toMatchObject({ service: "shop", status: "UP" });
  });

  test("a name with no records is an empty list, not an error", async () => {
    expect(await open().list("missing")).toEqual([]);
  });

  test("srv: \"\" skips SRV lookups", async () => {
    dns.zone.set("plain.svc", { A: [{ address: "10.0.0.2", ttl: 30 }] });
    const before = dns.queries.length;
    await open({ srv: "" }).list("plain");
    expect(dns.queries.slice(before).some((q) => q.startsWith("SRV"))).toBe(false);
  });

  test("a watch looks up again when the TTL runs out, not before", async () => {
    dns.zone.set("ttl.svc", { A: [{ address: "10.0.0.3", ttl: 1 }] });
    const count = () => dns.queries.filter((q) => q === "A ttl.svc").length;
    const times: number[] = [];
    const stop = open({ srv: "" }).watch("ttl", { update: () => times.push(Date.now()), error: () => undefined });
    try {
      await waitFor("two lookups", () => count() >= 2, 5000);
      expect(times.length).toBeGreaterThanOrEqual(1);
      // The second lookup came after the 1 s TTL (minRefresh is 100 ms).
      await waitFor("second update", () => times.length >= 2, 5000);
      expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(900);
    } finally {
      stop();
    }
  });

  test("an unreachable DNS server reports an error (the last answer stays in service upstream)", async () => {
    const r = open({ servers: ["127.0.0.1:1"], timeout: 200 });
    const err = await new Promise<Error>((resolve) => {
      const stop = r.watch("shop", { update: () => undefined, error: (e) => (stop(), resolve(e)) });
    });
    expect(err).toBeInstanceOf(Error);
  });

  test("it is read-only", async () => {
    const r = open();
    expect(r.readOnly).toBe(true);
    await expect(r.register()).rejects.toThrow(/read-only/);
  });
});
