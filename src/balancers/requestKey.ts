import type { Ctx } from "../pipeline/types.ts";

/** Reads one cookie from a Cookie header value; undefined when absent. */
export function cookieValue(header: string | null, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

export interface KeySource {
  header?: string;
  cookie?: string;
  sourceIp?: boolean;
}

/** The request's affinity key: a header, a cookie, or the client address; undefined if none. */
export function requestKey(ctx: Ctx, by: KeySource): string | undefined {
  if (by.header) {
    const h = ctx.headers.get(by.header);
    if (h) return h;
  }
  if (by.cookie) {
    const c = cookieValue(ctx.headers.get("cookie"), by.cookie);
    if (c) return c;
  }
  if (by.sourceIp && ctx.clientAddress) return ctx.clientAddress;
  return undefined;
}

/**
 * 32-bit FNV-1a with a murmur-style finaliser. Hand-rolled: the ring needs a fast, stable,
 * well-spread string hash, and the runtime's own (Bun.hash) would tie this pure module to Bun.
 */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
