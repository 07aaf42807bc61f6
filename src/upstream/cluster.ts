/**
 * A cluster is one logical service; an endpoint is one address of it. Endpoint objects keep
 * their identity across config reloads and discovery updates (keyed by address), so state
 * that lives on them (health, ejection, balancer counters) survives.
 */

export type EndpointStatus = "UP" | "DOWN";

export interface Endpoint {
  /** "host:port" */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  tags: Record<string, string>;
  weight: number;
  /** Where it came from: "static", or a discovery backend's kind. */
  origin: string;
  /** UP unless a registry or health check says otherwise. */
  status: EndpointStatus;
  /** Requests now in flight to it (balancers read this). */
  active: number;
  /** Until when (epoch ms) outlier detection keeps it out of rotation; 0 when not ejected. */
  ejectedUntil: number;
}

export interface Cluster {
  readonly name: string;
  endpoints: Endpoint[];
  /** Bumped whenever the endpoint list changes; balancers cache by it. */
  revision: number;
}

export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(":");
  let host = address.slice(0, i);
  if (host.startsWith("[")) host = host.slice(1, -1);
  return { host, port: Number(address.slice(i + 1)) };
}

export function makeEndpoint(
  address: string,
  init: { tags?: Record<string, string>; weight?: number; origin?: string } = {},
): Endpoint {
  const { host, port } = splitAddress(address);
  return {
    address,
    host,
    port,
    tags: init.tags ?? {},
    weight: init.weight ?? 1,
    origin: init.origin ?? "static",
    status: "UP",
    active: 0,
    ejectedUntil: 0,
  };
}

/** True when the endpoint may take traffic now. */
export function isAvailable(e: Endpoint, now: number): boolean {
  return e.status === "UP" && e.ejectedUntil <= now;
}

/** True when the endpoint carries every tag in `want`. */
export function hasTags(e: Endpoint, want: Record<string, string> | undefined): boolean {
  if (!want) return true;
  for (const k in want) if (e.tags[k] !== want[k]) return false;
  return true;
}
