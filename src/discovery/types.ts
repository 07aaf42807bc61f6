/**
 * The one small interface every discovery backend implements (static config needs none:
 * `services.X.endpoints` go straight into the ClusterManager). A backend knows instances of
 * services; the Discovery glue (./discovery.ts) turns them into cluster endpoints.
 */

export type InstanceStatus = "UP" | "DOWN";

/** One running copy of a service, as a registry stores it. */
export interface Instance {
  /** Unique within the service (e.g. "shop-1a2b3c4d"). */
  id: string;
  service: string;
  /** "host:port" by protocol: { http: "10.0.0.5:30111" }. Callers use `http`, else the first. */
  addresses: Record<string, string>;
  /** Labels such as version, app, zone; route rules match them. */
  tags: Record<string, string>;
  status: InstanceStatus;
}

/** What a watch reports: the full current list, or that the registry cannot be reached. */
export interface WatchListener {
  /** The complete current instances of the service (not a delta). */
  update(instances: Instance[]): void;
  /** The registry went away; the last list is still the best known. */
  error(err: Error): void;
}

export interface RegisterOptions {
  /**
   * Seconds the registration lives without this process renewing it. Omitted: the backend's
   * configured ttl, kept alive for as long as this registry is open.
   */
  ttl?: number;
  /** false: do not keep it alive (go-micro's `POST /registry?ttl=`: the caller re-registers). */
  keepAlive?: boolean;
}

/** A discovery backend. Users may pass their own object of this shape as `registry`. */
export interface Registry {
  /** Short name shown on /clusters and in metrics ("etcd", "file", "dns", or your own). */
  readonly kind: string;
  /** True for a registry that cannot store registrations (dns): self-registration is skipped. */
  readonly readOnly?: boolean;
  /** Starts watching a service; returns a function that stops the watch. */
  watch(service: string, listener: WatchListener): () => void;
  /** Current instances of a service, read once. */
  list(service: string): Promise<Instance[]>;
  /** Names of every service the registry knows. */
  services(): Promise<string[]>;
  /** Adds or replaces an instance. */
  register(instance: Instance, options?: RegisterOptions): Promise<void>;
  /** Removes an instance. */
  deregister(service: string, id: string): Promise<void>;
  /** Reports an instance's health: DOWN keeps it registered but out of rotation. */
  setStatus(service: string, id: string, status: InstanceStatus): Promise<void>;
  /** Releases connections and timers. Does not deregister anything itself. */
  close(): Promise<void>;
}

/** True for an object that has the Registry members (user-provided registries). */
export function isRegistry(x: unknown): x is Registry {
  if (!x || typeof x !== "object") return false;
  const r = x as Record<string, unknown>;
  return ["watch", "list", "services", "register", "deregister", "setStatus", "close"].every(
    (k) => typeof r[k] === "function",
  );
}

/** The address callers use for an instance: its http address, else the first one. */
export function instanceAddress(i: Instance): string | undefined {
  return i.addresses.http ?? Object.values(i.addresses)[0];
}
