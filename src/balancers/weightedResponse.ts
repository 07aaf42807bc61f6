import type { Endpoint } from "../upstream/cluster.ts";
import { roundRobin } from "./roundRobin.ts";
import type { Balancer } from "./types.ts";

export interface WeightedResponseOptions {
  /** How often the ranking is recomputed, in ms (go-chassis: 30 s). */
  interval?: number;
  /** Share of picks that go to the fastest endpoint, 0..100 (go-chassis code: 70). */
  percent?: number;
  /** Latencies kept per endpoint for the average (go-chassis: 10). */
  samples?: number;
}

/**
 * Latency-aware balancing as go-chassis' `WeightedResponse` (latency_strategy.go): keep the
 * last N latencies per endpoint, every `interval` rank endpoints by their average, send
 * `percent` of picks to the fastest candidate and round-robin the rest. Until the first
 * ranking exists it is plain round-robin; an endpoint not yet measured counts as fastest.
 */
export function weightedResponse(options: WeightedResponseOptions = {}): Balancer {
  const interval = options.interval ?? 30_000;
  const percent = options.percent ?? 70;
  const samples = options.samples ?? 10;
  const rr = roundRobin();
  const latencies = new Map<string, number[]>();
  let ranking: string[] = [];
  let rankedAt = 0;

  function rank(now: number): void {
    rankedAt = now;
    const avg = new Map<string, number>();
    for (const [address, l] of latencies) if (l.length) avg.set(address, l.reduce((a, b) => a + b, 0) / l.length);
    ranking = [...avg.keys()].sort((a, b) => avg.get(a)! - avg.get(b)!);
  }

  return {
    pick(candidates, ctx) {
      if (candidates.length === 0) return undefined;
      const now = Date.now();
      if (now - rankedAt >= interval) rank(now);
      if (ranking.length && Math.random() * 100 < percent) {
        // An endpoint never measured counts as fastest, so it gets measured (else a high
        // percent would starve it for ever).
        for (const c of candidates) if (!latencies.has(c.address)) return c;
        for (const address of ranking) {
          const e = candidates.find((c) => c.address === address);
          if (e) return e;
        }
      }
      return rr.pick(candidates, ctx);
    },
    done(_ctx, endpoint: Endpoint, ms) {
      let l = latencies.get(endpoint.address);
      if (!l) latencies.set(endpoint.address, (l = []));
      l.push(ms);
      if (l.length > samples) l.shift();
    },
  };
}
