import type { Endpoint } from "../upstream/cluster.ts";
import type { Balancer } from "./types.ts";

/**
 * Smooth weighted round-robin (nginx's algorithm): each pick adds every candidate's weight to
 * its running score, takes the highest, and subtracts the total from the winner. Weights 5/1/1
 * give a a b a c a a, spread out rather than bunched. Endpoints of weight 0 get no traffic.
 */
export function weightedRoundRobin(): Balancer {
  const score = new WeakMap<Endpoint, number>();
  return {
    pick(candidates) {
      let total = 0;
      let best: Endpoint | undefined;
      let bestScore = -Infinity;
      for (const e of candidates) {
        if (e.weight <= 0) continue;
        const s = (score.get(e) ?? 0) + e.weight;
        score.set(e, s);
        total += e.weight;
        if (s > bestScore) {
          bestScore = s;
          best = e;
        }
      }
      if (best) score.set(best, bestScore - total);
      return best;
    },
  };
}
