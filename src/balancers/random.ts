import type { Balancer } from "./types.ts";

/** Uniform random choice (go-chassis `Random`). */
export function random(): Balancer {
  return {
    pick(candidates) {
      if (candidates.length === 0) return undefined;
      return candidates[Math.floor(Math.random() * candidates.length)];
    },
  };
}
