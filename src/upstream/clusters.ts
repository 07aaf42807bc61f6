import { makeEndpoint, type Cluster, type Endpoint } from "./cluster.ts";

export interface EndpointSpec {
  address: string;
  tags?: Record<string, string>;
  weight?: number;
}

/**
 * The live set of clusters. Static endpoints come from config; discovery backends push theirs
 * under their own origin. Endpoint objects are reused by address so their state survives.
 */
export class ClusterManager {
  readonly #clusters = new Map<string, Cluster>();
  /** origin -> service -> endpoints, merged into each cluster. */
  readonly #sources = new Map<string, Map<string, EndpointSpec[]>>();

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
