import type { Balancer } from "./types.ts";

/** Plain round-robin over the candidates (go-chassis' default `RoundRobin`). */
export function roundRobin(): Balancer {
  let next = 0;
  return {
    pick(candidates) {
      if (candidates.length === 0) return undefined;
      const e = candidates[next % candidates.length];
      next = (next + 1) % 1_000_000_007;
      return e;
    },
  };
}
