/**
 * Per-service settings compiled once per chain build: `services.X.<key>` when set, else the
 * top-level default. A handler whose key is set nowhere gets `undefined` for every service and
 * returns `next()` at once.
 */
import type { ResolvedConfig, ServiceConfig } from "../config/schema.ts";
import { SKIP, type Handler, type HandlerEnv } from "../pipeline/types.ts";

type SharedKey = "loadBalancer" | "timeout" | "retry" | "circuitBreaker" | "outlierDetection";

export interface Setting<T> {
  /** The setting of one service (its own or the default); undefined when unset. */
  (service: string): T | undefined;
  /** True when no service and no default sets it. */
  readonly none: boolean;
}

export function serviceSetting<K extends SharedKey | "rateLimit" | "fault">(
  config: ResolvedConfig,
  key: K,
  fallback?: NonNullable<ServiceConfig[K]>,
): Setting<NonNullable<ServiceConfig[K]>> {
  type T = NonNullable<ServiceConfig[K]>;
  const byService = new Map<string, T>();
  for (const [name, svc] of Object.entries(config.services)) {
    const value = svc[key];
    if (value !== undefined) byService.set(name, value as T);
  }
  const global = (key === "rateLimit" ? config.rateLimit?.consumer : key === "fault" ? undefined : config[key as SharedKey]) as T | undefined;
  const dflt = global ?? fallback;
  const get = ((service: string) => byService.get(service) ?? dflt) as Setting<T>;
  Object.defineProperty(get, "none", { value: byService.size === 0 && dflt === undefined });
  return get;
}

/**
 * Returns the state kept under `key` across reloads, making it when absent. The key should
 * include the settings it was made from, so a changed setting starts afresh.
 */
export function keep<T>(env: HandlerEnv, key: string, make: () => T): T {
  if (!env.store) return make();
  let x = env.store.get(key) as T | undefined;
  if (x === undefined) env.store.set(key, (x = make()));
  return x;
}

/** A stable text of a setting for `keep` keys (functions by name). */
export function fingerprint(x: unknown): string {
  return JSON.stringify(x, (_k, v) => (typeof v === "function" ? `fn:${v.name}:${String(v).length}` : v));
}

/**
 * The handler of a chain where this handler has nothing to do: it passes straight on, and is
 * marked so the chain builder leaves it out altogether (one async hop less per request).
 */
export function passThrough(name: string): Handler {
  const h: Handler = async (_ctx, next) => next();
  Object.defineProperty(h, "name", { value: name });
  return Object.assign(h, { [SKIP]: true });
}
