/**
 * Smooth weighted round-robin (nginx's `ngx_http_upstream_get_peer`): deterministic and
 * interleaved, so 80/20 over 5 picks is a,a,b,a,a rather than a,a,a,a,b, and any window of
 * `total` picks holds each entry exactly `weight` times. Hand-rolled: it is ten lines, and
 * the balancer libraries on npm pick endpoints, not arbitrary items.
 */
export interface Wrr<T> {
  next(): T;
}

/** Cycles through `items` in proportion to `weights` (non-negative integers, at least one > 0). */
export function smoothWrr<T>(items: readonly T[], weights: readonly number[]): Wrr<T> {
  const current = weights.map(() => 0);
  const total = weights.reduce((a, b) => a + b, 0);
  if (items.length === 1 || total === 0) return { next: () => items[0]! };
  return {
    next() {
      let best = -1;
      for (let i = 0; i < current.length; i++) {
        if (weights[i] === 0) continue;
        current[i]! += weights[i]!;
        if (best < 0 || current[i]! > current[best]!) best = i;
      }
      current[best]! -= total;
      return items[best]!;
    },
  };
}
