/**
 * The glue between a registry and the ClusterManager: one watch per service pushes the
 * registry's instances into the cluster (origin = the registry's kind), so the load balancer
 * reads a local cache and never waits on the registry. A registry that goes away leaves the
 * last known endpoints in service and marks its origin stale (shown on /clusters and as the
 * `mesher_registry_stale` metric) until it answers again.
 */
import { MeshError } from "../pipeline/errors.ts";
import type { ClusterManager, EndpointSpec } from "../upstream/clusters.ts";
import { instanceAddress, type Instance, type Registry } from "./types.ts";

/** Services asked for at run time that are watched at once (a bound against typo floods). */
const MAX_DYNAMIC = 1000;
/** How long a name the registry did not know is answered "unknown" without asking again. */
const NEGATIVE_MS = 1000;

interface Watch {
  stop: () => void;
  /** Settles at the first answer (or failure) of the registry. */
  first: Promise<void>;
  dynamic: boolean;
  /** The first answer of a dynamic watch was empty: the service does not exist (yet). */
  emptyFirst: boolean;
  failing?: string;
}

export interface DiscoveryStatus {
  kind: string;
  stale: boolean;
  /** Epoch ms since when the registry is unreachable. */
  since?: number;
  reason?: string;
  watched: string[];
}

export interface StaleGauge {
  set(labels: { registry: string }, value: number): void;
}

function toSpec(i: Instance): EndpointSpec | undefined {
  const address = instanceAddress(i);
  return address ? { address, tags: i.tags, status: i.status } : undefined;
}

export class Discovery {
  readonly registry: Registry;
  readonly #clusters: ClusterManager;
  readonly #gauge?: StaleGauge;
  readonly #lookupTimeout: number;
  readonly #watches = new Map<string, Watch>();
  readonly #negative = new Map<string, number>();
  #dynamicCount = 0;

  constructor(registry: Registry, clusters: ClusterManager, lookupTimeout: number, gauge?: StaleGauge) {
    this.registry = registry;
    this.#clusters = clusters;
    this.#lookupTimeout = lookupTimeout;
    this.#gauge = gauge;
    gauge?.set({ registry: registry.kind }, 0);
    clusters.resolver = (name) => this.lookup(name);
  }

  /** Watches every named service (those in `services` of the config); others stay as they are. */
  sync(names: Iterable<string>): void {
    for (const name of names) {
      const w = this.#watches.get(name);
      if (w) w.dynamic = false;
      else this.#watch(name, false);
    }
  }

  #watch(service: string, dynamic: boolean): Watch {
    let settle!: () => void;
    let settled = false;
    const w: Watch = { stop: () => undefined, first: new Promise<void>((r) => (settle = r)), dynamic, emptyFirst: false };
    if (dynamic) this.#dynamicCount++;
    this.#watches.set(service, w);
    const kind = this.registry.kind;
    w.stop = this.registry.watch(service, {
      update: (instances) => {
        if (this.#watches.get(service) !== w) return;
        const specs = instances.map(toSpec).filter((s): s is EndpointSpec => s !== undefined);
        if (!settled && w.dynamic && specs.length === 0 && !this.#clusters.get(service)) {
          w.emptyFirst = true; // no cluster for a name nobody has registered
        } else {
          this.#clusters.setEndpoints(kind, service, specs);
        }
        // Instances' `grpc` addresses (their sidecars' grpcProvider listeners) feed the gRPC
        // cluster; no cluster is made for a service none of whose instances speaks gRPC.
        const grpc = instances.flatMap((i): EndpointSpec[] => (i.addresses.grpc ? [{ address: i.addresses.grpc, tags: i.tags, status: i.status }] : []));
        const grpcCluster = `grpc:${service}`; // listeners/grpc.ts grpcClusterName (not imported: it pulls in the listener)
        if (grpc.length > 0 || this.#clusters.get(grpcCluster)) this.#clusters.setEndpoints(kind, grpcCluster, grpc);
        if (w.failing) {
          w.failing = undefined;
          this.#updateStale();
        }
        settled = true;
        settle();
      },
      error: (err) => {
        if (this.#watches.get(service) !== w) return;
        if (!w.failing) {
          w.failing = err.message || String(err);
          this.#updateStale();
        }
        settled = true;
        settle();
      },
    });
    return w;
  }

  #updateStale(): void {
    const failing = [...this.#watches.values()].find((w) => w.failing);
    this.#clusters.setStale(this.registry.kind, failing?.failing);
    this.#gauge?.set({ registry: this.registry.kind }, failing ? 1 : 0);
  }

  /**
   * For a service static config does not know: watches it and waits (at most lookupTimeout)
   * for the registry's first answer. A name nobody registered is forgotten again, so a
   * stream of bad names does not pile up watches.
   */
  async lookup(service: string): Promise<void> {
    const until = this.#negative.get(service);
    if (until !== undefined) {
      if (until > Date.now()) return;
      this.#negative.delete(service);
    }
    let w = this.#watches.get(service);
    if (!w) {
      if (this.#dynamicCount >= MAX_DYNAMIC) return;
      w = this.#watch(service, true);
    }
    let timer: Timer | undefined;
    await Promise.race([w.first, new Promise<void>((r) => (timer = setTimeout(r, this.#lookupTimeout)))]);
    clearTimeout(timer);
    if (w.dynamic && w.emptyFirst && !this.#clusters.get(service) && this.#watches.get(service) === w) {
      this.#unwatch(service);
      this.#negative.set(service, Date.now() + NEGATIVE_MS);
    }
    // The registry failed before it could say: the caller answers 503, not "no such service".
    // The watch stays and keeps retrying, so the name resolves once the registry is back.
    if (w.failing && !this.#clusters.get(service)) {
      throw new MeshError("registry_unavailable", `cannot look up "${service}": the ${this.registry.kind} registry is unavailable (${w.failing})`);
    }
  }

  #unwatch(service: string): void {
    const w = this.#watches.get(service);
    if (!w) return;
    this.#watches.delete(service);
    if (w.dynamic) this.#dynamicCount--;
    w.stop();
  }

  status(): DiscoveryStatus {
    const stale = this.#clusters.staleOrigins().get(this.registry.kind);
    return {
      kind: this.registry.kind,
      stale: stale !== undefined,
      since: stale?.since,
      reason: stale?.reason,
      watched: [...this.#watches.keys()].sort(),
    };
  }

  /** Stops every watch (the clusters keep what they have). */
  stop(): void {
    for (const name of [...this.#watches.keys()]) this.#unwatch(name);
    if (this.#clusters.resolver) this.#clusters.resolver = undefined;
  }
}
