/**
 * Compiles a resolved config into the pipeline the listeners run: one composed function per
 * chain, built once per config load. A reload builds a new Pipeline and swaps it in whole.
 */
import type { ResolvedConfig } from "../config/schema.ts";
import { builtinHandlers, DEFAULT_CHAINS } from "../handlers/index.ts";
import type { ClusterManager, EndpointSpec } from "../upstream/clusters.ts";
import { compileEgress, type EgressTable } from "../egress/match.ts";
import { compose } from "./compose.ts";
import { SKIP, type Ctx, type Direction, type Handler, type HandlerEnv, type Source } from "./types.ts";

export interface Pipeline {
  readonly config: ResolvedConfig;
  /** Increases with every config applied (shown on the admin API). */
  readonly version: number;
  readonly consumer: (ctx: Ctx) => Promise<void>;
  readonly provider: (ctx: Ctx) => Promise<void>;
  /** Calls leaving the mesh (egress): no router or balancer, the endpoint is the external host. */
  readonly egress: (ctx: Ctx) => Promise<void>;
  readonly egressTable: EgressTable;
  /** True when `name` (in any case) is a service this sidecar knows (a cluster exists for it). */
  readonly isService: (name: string) => boolean;
  /**
   * Asked before a name that is neither a known service nor egress-allowed is refused: true
   * when discovery finds the service on demand (the registry's resolver, if any).
   */
  readonly discoverService: (name: string) => Promise<boolean>;
  /** This sidecar's identity as the `x-cse-context` header carries it (Mesher's format). */
  readonly identity: string;
  /** Process-wide pieces handlers share (metrics, state kept across reloads). */
  readonly extras: PipelineExtras;
}

/** Header that carries the caller's identity across the mesh, as Mesher and go-chassis do. */
export const IDENTITY_HEADER = "x-cse-context";

/** Builds the identity header value once per config. */
export function identityOf(config: ResolvedConfig): string {
  const s = config.service;
  return JSON.stringify({
    "x-cse-src-microservice": s.name,
    "x-mesher-src-version": s.version,
    "x-mesher-src-app": s.app,
    "x-mesher-src-tags": s.tags,
  });
}

/** Reads the caller identity from an `x-cse-context` value; undefined when absent or broken. */
export function parseIdentity(value: string | null): Source | undefined {
  if (!value) return undefined;
  try {
    const o = JSON.parse(value) as Record<string, unknown>;
    const name = o["x-cse-src-microservice"];
    if (typeof name !== "string") return undefined;
    const str = (x: unknown) => (typeof x === "string" ? x : undefined);
    const tags = o["x-mesher-src-tags"];
    return {
      name,
      version: str(o["x-mesher-src-version"]),
      app: str(o["x-mesher-src-app"]),
      tags: tags && typeof tags === "object" ? (tags as Record<string, string>) : undefined,
    };
  } catch {
    return undefined;
  }
}

/** What handlers share beyond the config: metrics, and state kept across reloads. */
export type PipelineExtras = Pick<HandlerEnv, "metrics" | "store">;

/**
 * Makes the handlers of a chain from its entries (built-in or user names, inline functions).
 * Handlers with nothing configured mark themselves and are left out: they cost nothing per
 * request.
 */
export function instantiate(
  config: ResolvedConfig,
  clusters: ClusterManager,
  direction: Direction,
  entries: readonly (string | Handler)[],
  extras: PipelineExtras,
): Handler[] {
  const env: HandlerEnv = { config, clusters, direction, ...extras };
  const handlers: Handler[] = entries.map((entry) => {
    if (typeof entry === "function") return entry;
    const factory = config.handlers[entry] ?? builtinHandlers[entry];
    if (!factory) throw new Error(`unknown handler "${entry}"`); // resolveConfig checked this
    return factory(env);
  });
  return handlers.filter((h) => !(h as { [SKIP]?: boolean })[SKIP]);
}

function buildChain(config: ResolvedConfig, clusters: ClusterManager, direction: Direction, extras: PipelineExtras): (ctx: Ctx) => Promise<void> {
  const side = direction === "provider" ? "provider" : "consumer";
  return compose(instantiate(config, clusters, direction, config.chains[side] ?? DEFAULT_CHAINS[side], extras));
}

/** The static endpoints of a config, as the cluster manager takes them. */
export function staticEndpoints(config: ResolvedConfig): Record<string, EndpointSpec[]> {
  const out: Record<string, EndpointSpec[]> = {};
  for (const [name, svc] of Object.entries(config.services)) {
    out[name] = svc.endpoints.map((e) => (typeof e === "string" ? { address: e } : e));
    // gRPC provider listeners of the service, as cluster "grpc:<name>" (see listeners/grpc.ts).
    if (svc.grpcEndpoints.length) out[`grpc:${name}`] = svc.grpcEndpoints.map((e) => (typeof e === "string" ? { address: e } : e));
  }
  return out;
}

export function buildPipeline(config: ResolvedConfig, clusters: ClusterManager, version: number, extras: PipelineExtras = {}): Pipeline {
  return {
    config,
    version,
    consumer: buildChain(config, clusters, "consumer", extras),
    provider: buildChain(config, clusters, "provider", extras),
    egress: compose(instantiate(config, clusters, "consumer", config.chains.egress ?? DEFAULT_CHAINS.egress, extras)),
    egressTable: compileEgress(config.egress),
    isService: (name) => clusters.canonicalName(name) !== undefined,
    discoverService: async (name) => clusters.canonicalName(name) !== undefined || (await clusters.discover(name)) !== undefined,
    identity: identityOf(config),
    extras,
  };
}
