/**
 * The `dns` backend: a service name (plus `suffix`, e.g. ".default.svc.cluster.local") is
 * looked up as SRV first (`_http._tcp.<name>`: targets with their own ports), else as A and
 * AAAA records at the configured port. Answers are refreshed when their TTL runs out (kept
 * between minRefresh and maxRefresh; node's SRV answers carry no TTL, so SRV refreshes at
 * the TTL of the targets' addresses, or maxRefresh). Read-only: nothing registers in DNS.
 */
import { isIP } from "node:net";
import { Resolver } from "node:dns/promises";
import type { Instance, Registry, WatchListener } from "../types.ts";

export interface DnsRegistryOptions {
  servers?: string[];
  suffix: string;
  port: number;
  /** SRV name pattern with "{name}"; "" skips SRV. */
  srv: string;
  /** ms */
  minRefresh: number;
  /** ms */
  maxRefresh: number;
  /** ms per query attempt (two attempts); default 2000 */
  timeout?: number;
}

/** Codes that mean "this name has no such records": an answer, not an outage. */
const NO_RECORDS = new Set(["ENOTFOUND", "ENODATA", "NXDOMAIN", "DNS_ENOTFOUND", "DNS_ENODATA"]);
const noRecords = (err: unknown) => NO_RECORDS.has((err as { code?: string }).code ?? "");

interface Answer {
  instances: Instance[];
  /** Seconds the answer may be cached (smallest TTL seen). */
  ttl: number;
}

export class DnsRegistry implements Registry {
  readonly kind = "dns";
  readonly readOnly = true;
  readonly #o: DnsRegistryOptions;
  readonly #resolver: Resolver;
  readonly #watched = new Set<string>();
  readonly #timers = new Set<Timer>();

  constructor(o: DnsRegistryOptions) {
    this.#o = o;
    this.#resolver = new Resolver({ timeout: o.timeout ?? 2000, tries: 2 });
    if (o.servers?.length) this.#resolver.setServers(o.servers);
  }

  /** Addresses of a host name (or the literal itself), with the smallest TTL. */
  async #addresses(host: string): Promise<{ ips: string[]; ttl: number }> {
    if (isIP(host)) return { ips: [host], ttl: Infinity };
    const [v4, v6] = await Promise.all(
      [this.#resolver.resolve4(host, { ttl: true }), this.#resolver.resolve6(host, { ttl: true })].map((p) =>
        p.catch((err: unknown) => {
          if (noRecords(err)) return [];
          throw err;
        }),
      ),
    );
    const all = [...v4!, ...v6!];
    return { ips: all.map((r) => r.address), ttl: Math.min(Infinity, ...all.map((r) => r.ttl)) };
  }

  async #lookup(service: string): Promise<Answer> {
    const fqdn = `${service}${this.#o.suffix}`;
    const make = (ip: string, port: number): Instance => {
      const address = `${ip.includes(":") ? `[${ip}]` : ip}:${port}`;
      return { id: address, service, addresses: { http: address }, tags: {}, status: "UP" };
    };
    if (this.#o.srv) {
      const records = await this.#resolver.resolveSrv(this.#o.srv.replaceAll("{name}", fqdn)).catch((err: unknown) => {
        if (noRecords(err)) return [];
        throw err;
      });
      if (records.length) {
        const instances: Instance[] = [];
        let ttl = this.#o.maxRefresh / 1000;
        for (const r of records) {
          const { ips, ttl: t } = await this.#addresses(r.name);
          ttl = Math.min(ttl, t);
          for (const ip of ips) instances.push(make(ip, r.port));
        }
        return { instances, ttl };
      }
    }
    const { ips, ttl } = await this.#addresses(fqdn);
    return { instances: ips.map((ip) => make(ip, this.#o.port)), ttl };
  }

  async list(service: string): Promise<Instance[]> {
    return (await this.#lookup(service)).instances;
  }

  async services(): Promise<string[]> {
    return [...this.#watched].sort();
  }

  watch(service: string, listener: WatchListener): () => void {
    let stopped = false;
    let timer: Timer | undefined;
    this.#watched.add(service);
    const schedule = (ms: number) => {
      if (stopped) return;
      const clamped = Math.min(this.#o.maxRefresh, Math.max(this.#o.minRefresh, ms));
      timer = setTimeout(tick, clamped);
      this.#timers.add(timer);
    };
    const tick = async () => {
      if (timer) this.#timers.delete(timer);
      try {
        const answer = await this.#lookup(service);
        if (stopped) return;
        listener.update(answer.instances);
        schedule(answer.ttl * 1000);
      } catch (err) {
        if (stopped) return;
        listener.error(err as Error);
        schedule(this.#o.minRefresh);
      }
    };
    void tick();
    return () => {
      stopped = true;
      this.#watched.delete(service);
      if (timer) {
        clearTimeout(timer);
        this.#timers.delete(timer);
      }
    };
  }

  async register(): Promise<void> {
    throw new Error("the dns registry is read-only: instances come from DNS records");
  }
  deregister = this.register;
  setStatus = this.register;

  async close(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#watched.clear();
  }
}
