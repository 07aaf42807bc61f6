/**
 * Compiled egress rules: does the app's destination (host, port) leave the mesh, and may it?
 * Mesher matches "*.suffix" with an unescaped regexp (so "*.yahoo.com" also matched
 * "xyahooycom"); here a wildcard is a plain suffix test on a dot boundary.
 */
import type { RouteDecision } from "../pipeline/types.ts";
import type { EgressConfig, EgressRule } from "./schema.ts";

export type EgressKind = "http" | "connect";

export interface EgressMatch {
  /** The rule's name, or its index. */
  rule: string;
  /** "host:port" to dial. */
  address: string;
  /** The port dialled. */
  port: number;
  /** What the egress chain's handlers read (timeout, retry), shared by every call of the rule. */
  route: RouteDecision;
}

interface Compiled {
  name: string;
  route: RouteDecision;
  exact: Set<string>;
  /** ".example.org" for "*.example.org". */
  suffixes: string[];
  httpPorts: Set<number>;
  connectPorts: Set<number>;
}

const DEFAULT_HTTP = 80;
const DEFAULT_CONNECT = 443;

function compileRule(rule: EgressRule, i: number): Compiled {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const h of rule.hosts) {
    if (h.startsWith("*.")) suffixes.push(h.slice(1));
    else exact.add(h);
  }
  const httpPorts = new Set<number>();
  const connectPorts = new Set<number>();
  for (const p of rule.ports) (p.protocol === "HTTP" ? httpPorts : connectPorts).add(p.port);
  if (rule.ports.length === 0) {
    httpPorts.add(DEFAULT_HTTP);
    connectPorts.add(DEFAULT_CONNECT);
  }
  const name = rule.name ?? String(i);
  const route: RouteDecision = { name: `egress:${name}` };
  if (rule.timeout !== undefined) route.timeout = rule.timeout;
  if (rule.retry) route.retry = rule.retry;
  return { name, route, exact, suffixes, httpPorts, connectPorts };
}

export interface EgressTable {
  readonly allowAll: boolean;
  /**
   * The rule that lets the app reach `host` (lower case, no brackets) on `port` (undefined:
   * the kind's default), or undefined.
   */
  match(host: string, port: number | undefined, kind: EgressKind): EgressMatch | undefined;
}

export function compileEgress(config: EgressConfig): EgressTable {
  const rules = config.rules.map(compileRule);
  return {
    allowAll: config.allowAll,
    match(host, port, kind) {
      for (const r of rules) {
        if (!r.exact.has(host) && !r.suffixes.some((s) => host.endsWith(s) && host.length > s.length)) continue;
        const ports = kind === "http" ? r.httpPorts : r.connectPorts;
        // A plain request without a port uses the rule's HTTP port (Mesher: first HTTP port, else 80).
        const p = port ?? (kind === "http" ? (ports.values().next().value ?? DEFAULT_HTTP) : DEFAULT_CONNECT);
        if (!ports.has(p)) continue;
        return { rule: r.name, address: `${host.includes(":") ? `[${host}]` : host}:${p}`, port: p, route: r.route };
      }
      return undefined;
    },
  };
}

/**
 * Whether the consumer port must serve CONNECT: asked for, or (`"auto"`) some egress rule can
 * allow a tunnel (a non-HTTP port, a rule without ports, or allowAll). Only then is the slower
 * node:http engine used; otherwise Bun.serve serves the port and refuses CONNECT itself.
 */
export function servesConnect(connect: boolean | "auto", egress: EgressConfig): boolean {
  if (connect !== "auto") return connect;
  return egress.allowAll || egress.rules.some((r) => r.ports.length === 0 || r.ports.some((p) => p.protocol !== "HTTP"));
}
