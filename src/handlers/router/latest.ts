/**
 * Mesher's `version: latest`: the rest of a rule whose weights sum under 100 goes to the
 * newest version of the service. With a registry go-chassis asks it; here the newest
 * `version` tag among the cluster's endpoints is used, unless an endpoint is literally
 * tagged `latest`. Cached per cluster revision, so it is computed once per endpoint change.
 */
import type { Cluster } from "../../upstream/cluster.ts";

export const LATEST = "latest";

const natural = new Intl.Collator("en", { numeric: true, sensitivity: "base" });

/** Compares versions with digit runs as numbers: "1.10" > "1.9", "v10" > "v2". */
export function compareVersions(a: string, b: string): number {
  return natural.compare(a, b);
}

/** Returns a resolver: cluster -> the version "latest" stands for. */
export function latestResolver(): (cluster: Cluster) => string {
  const cache = new WeakMap<Cluster, { revision: number; version: string }>();
  return (cluster) => {
    const hit = cache.get(cluster);
    if (hit && hit.revision === cluster.revision) return hit.version;
    let best: string | undefined;
    for (const e of cluster.endpoints) {
      const ver = e.tags.version;
      if (ver === undefined) continue;
      if (ver === LATEST) {
        best = LATEST;
        break;
      }
      if (best === undefined || compareVersions(ver, best) > 0) best = ver;
    }
    const version = best ?? LATEST;
    cache.set(cluster, { revision: cluster.revision, version });
    return version;
  };
}
