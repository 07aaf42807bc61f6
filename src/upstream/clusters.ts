import { makeEndpoint, type Cluster, type Endpoint, type EndpointStatus } from "./cluster.ts";

export interface EndpointSpec {
  address: string;
  tags?: Record<string, string>;
  weight?: number;
  /** As a registry reports it; omitted: left as it is (UP for a new endpoint). */
  status?: EndpointStatus;
}

/** An origin whose source went away: its last known endpoints stay in service. */
export interface StaleOrigin {
  /** Epoch ms when it went stale. */
  since: number;
  reason: string;
}

/**
 * The live set of clusters. Static endpoints come from config; discovery backends push theirs
 * under their own origin. Endpoint objects are reused by address so their state survives.
 */
export class ClusterManager {
  readonly #clusters = new Map<string, Cluster>();
  /** origin -> service -> endpoints, merged into each cluster. */
  readonly #sources = new Map<string, Map<string, EndpointSpec[]>>();
  readonly #stale = new Map<string, StaleOrigin>();
  /**
   * Resolves a service static config does not know (set by discovery): starts watching it and
   * settles once the first answer is in (bounded by the resolver itself).
   */
  resolver?: (service: string) => Promise<void>;

  /** Lower-cased name -> name: Host headers are case-insensitive, service names are not. */
  readonly #folded = new Map<string, string>();

  get(name: string): Cluster | undefined {
    return this.#clusters.get(name);
  }

  /**
   * The service's name as configured for a name as a Host header spelled it: exact first,
   * then ignoring case (so `http://shoppingcart/` finds Mesher's `ShoppingCart`).
   */
  canonicalName(name: string): string | undefined {
    return this.#clusters.has(name) ? name : this.#folded.get(name.toLowerCase());
  }

  names(): string[] {
    return [...this.#clusters.keys()].sort();
  }

  all(): Cluster[] {
    return this.names().map((n) => this.#clusters.get(n)!);
  }

  /** Replaces everything one origin says about the services it knows. */
  setOrigin(origin: string, services: Record<string, EndpointSpec[]>): void {
    const before = this.#sources.get(origin);
    const next = new Map(Object.entries(services));
    this.#sources.set(origin, next);
    const touched = new Set([...(before?.keys() ?? []), ...next.keys()]);
    for (const name of touched) this.#rebuild(name);
  }

  /** Replaces one origin's endpoints of one service. */
  setEndpoints(origin: string, service: string, specs: EndpointSpec[]): void {
    let m = this.#sources.get(origin);
    if (!m) this.#sources.set(origin, (m = new Map()));
    m.set(service, specs);
    this.#rebuild(service);
  }

  /** Marks an origin stale (its source is unreachable) or fresh again (reason undefined). */
  setStale(origin: string, reason: string | undefined): void {
    if (reason === undefined) this.#stale.delete(origin);
    else if (!this.#stale.has(origin)) this.#stale.set(origin, { since: Date.now(), reason });
  }

  /** Origins now stale, by name. */
  staleOrigins(): ReadonlyMap<string, StaleOrigin> {
    return this.#stale;
  }

  /** The cluster of a service, asking the resolver when static config does not know it. */
  async discover(name: string): Promise<Cluster | undefined> {
    const known = this.#clusters.get(name);
    if (known || !this.resolver) return known;
    await this.resolver(name);
    return this.#clusters.get(name);
  }

  #rebuild(name: string): void {
    const old = this.#clusters.get(name);
    const byAddress = new Map(old?.endpoints.map((e) => [e.address, e]));
    const endpoints: Endpoint[] = [];
    const seen = new Set<string>();
    let declared = false;
    for (const [origin, services] of this.#sources) {
      const specs = services.get(name);
      if (!specs) continue;
      declared = true;
      for (const s of specs) {
        if (seen.has(s.address)) continue;
        seen.add(s.address);
        const e = byAddress.get(s.address) ?? makeEndpoint(s.address, { origin });
        e.tags = s.tags ?? {};
        e.weight = s.weight ?? 1;
        e.origin = origin;
        if (s.status) e.status = s.status; // specs without one leave it to health checking
        endpoints.push(e);
      }
    }
    if (!declared) {
      this.#clusters.delete(name);
      if (this.#folded.get(name.toLowerCase()) === name) this.#folded.delete(name.toLowerCase());
      return;
    }
    this.#folded.set(name.toLowerCase(), name);
    if (old) {
      old.endpoints = endpoints;
      old.revision++;
    } else {
      this.#clusters.set(name, { name, endpoints, revision: 1 });
    }
  }
}
