import type { Ctx } from "../pipeline/types.ts";
import { makeEndpoint, type Endpoint } from "../upstream/cluster.ts";

/** Endpoints "a:1", "b:1", ... with optional weights, for balancer tests. */
export function eps(n: number, weights: number[] = []): Endpoint[] {
  return Array.from({ length: n }, (_, i) => makeEndpoint(`${String.fromCharCode(97 + i)}:1`, { weight: weights[i] ?? 1 }));
}

/** A minimal context with the given request headers and client address. */
export function fakeCtx(headers: Record<string, string> = {}, clientAddress = "10.0.0.1"): Ctx {
  return { headers: new Headers(headers), clientAddress, state: {} } as unknown as Ctx;
}

/** Counts picks per address. */
export function tally(pick: () => Endpoint | undefined, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const a = pick()?.address ?? "none";
    out[a] = (out[a] ?? 0) + 1;
  }
  return out;
}
