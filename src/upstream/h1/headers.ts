import { HOP_BY_HOP } from "../http.ts";

const HOP = new Set(HOP_BY_HOP);
/** The lengths of hop-by-hop names: a name of another length is not one. */
export const HOP_LENGTHS = new Set(HOP_BY_HOP.map((n) => n.length));

/** True for a header name that describes one connection (any case). */
export function isHopByHopResponseHeader(name: string): boolean {
  // Most names are not hop-by-hop: skip the lower-casing for lengths none of them have.
  return HOP_LENGTHS.has(name.length) && HOP.has(name.toLowerCase());
}

/**
 * The [name, value, ...] pairs a proxy passes on: without hop-by-hop headers and those the
 * Connection header names (RFC 9110 §7.6.1); names as received. The same array when there is
 * nothing to leave out.
 */
export function forwardable(pairs: string[]): string[] {
  let hop = false;
  let named: Set<string> | undefined;
  for (let i = 0; i < pairs.length; i += 2) {
    if (!isHopByHopResponseHeader(pairs[i]!)) continue;
    hop = true;
    if (pairs[i]!.toLowerCase() !== "connection") continue;
    for (const t of pairs[i + 1]!.split(",")) {
      const n = t.trim().toLowerCase();
      if (n) (named ??= new Set()).add(n);
    }
  }
  if (!hop) return pairs;
  const out: string[] = [];
  for (let i = 0; i < pairs.length; i += 2) {
    const n = pairs[i]!;
    if (!isHopByHopResponseHeader(n) && !named?.has(n.toLowerCase())) out.push(n, pairs[i + 1]!);
  }
  return out;
}
