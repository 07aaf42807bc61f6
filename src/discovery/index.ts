/**
 * Discovery and registration for one mesher: builds the configured registry, watches the
 * services the config names (and those asked for at run time), and registers the local
 * app(s). `server.ts` creates it before the listeners and starts self-registration once the
 * provider listener has an address.
 */
import type { ResolvedConfig } from "../config/schema.ts";
import type { ClusterManager } from "../upstream/clusters.ts";
import { Discovery, type DiscoveryStatus, type StaleGauge } from "./discovery.ts";
import { DnsRegistry } from "./dns/dns.ts";
import { LazyRegistry } from "./lazy.ts";
import { advertisedAddress, localApps, Registrar, type RegistrationState } from "./registrar.ts";
import type { RegistryConfig } from "./schema.ts";
import { isRegistry, type Registry } from "./types.ts";

/** Builds the registry a config names; a user's own registry object is used as it is. */
export function createRegistry(c: RegistryConfig): Registry {
  if (isRegistry(c)) return c;
  switch (c.kind) {
    case "etcd":
      // etcd3 and grpc-js are imported only for an etcd registry: ~36 MB of RSS otherwise unused.
      return new LazyRegistry("etcd", async () => new (await import("./etcd/etcd.ts")).EtcdRegistry(c));
    case "file":
      // Lazy too, for the yaml parser it reads and writes with.
      return new LazyRegistry("file", async () => new (await import("./file/file.ts")).FileRegistry(c));
    case "dns":
      return new DnsRegistry(c);
  }
}

export interface DiscoveryRuntime {
  readonly registry: Registry;
  readonly discovery: Discovery;
  /** Registers the local app(s) at the provider address (no-op without one or when read-only). */
  registerSelf(providerAddress: string | undefined, idSuffix: string, grpcProviderAddress?: string): void;
  /** Follows a reloaded config's `services`. */
  reload(config: ResolvedConfig): void;
  status(): DiscoveryStatus & { registrations: RegistrationState[] };
  /** Deregisters the local app(s), stops watches, closes the registry. */
  stop(): Promise<void>;
}

/** Discovery for a config; undefined when it has no `registry`. */
export function createDiscovery(config: ResolvedConfig, clusters: ClusterManager, gauge?: StaleGauge): DiscoveryRuntime | undefined {
  if (!config.registry) return undefined;
  const registry = createRegistry(config.registry);
  const lookupTimeout = isRegistry(config.registry) ? 2000 : config.registry.lookupTimeout;
  const discovery = new Discovery(registry, clusters, lookupTimeout, gauge);
  discovery.sync(Object.keys(config.services));
  let registrar: Registrar | undefined;
  let stopping: Promise<void> | undefined;
  return {
    registry,
    discovery,
    registerSelf(providerAddress, idSuffix, grpcProviderAddress) {
      if (!providerAddress || !config.register || registry.readOnly || registrar) return;
      const grpc = grpcProviderAddress ? advertisedAddress(grpcProviderAddress) : undefined;
      registrar = new Registrar(registry, localApps(config), advertisedAddress(providerAddress), idSuffix, grpc);
      registrar.start();
    },
    reload(next) {
      discovery.sync(Object.keys(next.services));
    },
    status() {
      return { ...discovery.status(), registrations: registrar?.states() ?? [] };
    },
    stop() {
      stopping ??= (async () => {
        await registrar?.stop();
        discovery.stop();
        await registry.close();
      })();
      return stopping;
    },
  };
}

export type { Instance, Registry, RegisterOptions, WatchListener, InstanceStatus } from "./types.ts";
