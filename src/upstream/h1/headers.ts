import { HOP_BY_HOP } from "../http.ts";

const HOP = new Set(HOP_BY_HOP);
const LENGTHS = new Set(HOP_BY_HOP.map((n) => n.length));

/** True for a header name that describes one connection (any case). */
export function isHopByHopResponseHeader(name: string): boolean {
  // Most names are not hop-by-hop: skip the lower-casing for lengths none of them have.
  return LENGTHS.has(name.length) && HOP.has(name.toLowerCase());
}
