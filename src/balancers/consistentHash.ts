import type { Endpoint } from "../upstream/cluster.ts";
import { hash32, requestKey, type KeySource } from "./requestKey.ts";
import { roundRobin } from "./roundRobin.ts";
import type { Balancer } from "./types.ts";

export interface ConsistentHashOptions extends KeySource {
  /** Points on the ring per unit of endpoint weight (Ketama uses 160). */
  replicas?: number;
}

interface Ring {
  hashes: Uint32Array;
  endpoints: Endpoint[];
}

// An endpoint's points depend only on its own address and weight, so removing one endpoint
// leaves every other point where it was: only the removed endpoint's keys move.
function buildRing(candidates: readonly Endpoint[], replicas: number): Ring {
  const points: { h: number; e: Endpoint }[] = [];
  for (const e of candidates) {
    const n = Math.max(1, Math.round(replicas * Math.max(0, e.weight)));
    for (let i = 0; i < n; i++) points.push({ h: hash32(`${e.address}_${i}`), e });
  }
  points.sort((a, b) => a.h - b.h);
  return { hashes: Uint32Array.from(points, (p) => p.h), endpoints: points.map((p) => p.e) };
}

/**
 * Ring hash (Ketama-style, as Envoy's RING_HASH): each endpoint owns many points on a 32-bit
 * ring; a request goes to the first point at or after the hash of its key (a header, a cookie
 * or the client address). Removing one endpoint moves only the keys it owned. Requests with
 * no key fall back to round-robin. Rings are cached per candidate set.
 */
export function consistentHash(options: ConsistentHashOptions = {}): Balancer {
  const replicas = options.replicas ?? 160;
  const rr = roundRobin();
  const rings = new Map<string, Ring>();
  return {
    pick(candidates, ctx) {
      if (candidates.length <= 1) return candidates[0];
      const key = requestKey(ctx, options);
      if (key === undefined) return rr.pick(candidates, ctx);
      let setKey = "";
      for (const e of candidates) setKey += `${e.address}*${e.weight},`;
      let ring = rings.get(setKey);
      if (!ring) {
        if (rings.size >= 16) rings.clear(); // candidate sets change rarely; keep a few
        rings.set(setKey, (ring = buildRing(candidates, replicas)));
      }
      const h = hash32(key);
      const { hashes } = ring;
      let lo = 0;
      let hi = hashes.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (hashes[mid]! < h) lo = mid + 1;
        else hi = mid;
      }
      return ring.endpoints[lo === hashes.length ? 0 : lo];
    },
  };
}
