/**
 * The shapes every handler sees. Plain TypeScript on web-standard Request/Response: nothing
 * here touches Bun.
 */
import type { Cluster, Endpoint } from "../upstream/cluster.ts";
import type { ClusterManager } from "../upstream/clusters.ts";
import type { ResolvedConfig } from "../config/schema.ts";
import type { FaultOptions } from "../handlers/fault/schema.ts";
import type { RetryOptions } from "../handlers/retry/schema.ts";
import type { Upgrader } from "../listeners/upgrade.ts";
import type { Metrics } from "../telemetry/metrics.ts";

export type Direction = "consumer" | "provider" | "edge";

/** Who made the call: the caller's service as carried across the mesh. */
export interface Source {
  name: string;
  version?: string;
  app?: string;
  tags?: Record<string, string>;
}

/**
 * What the router decided: which tags the endpoint must carry, and the per-route settings
 * later handlers read in place of the service's own (timeout, retry, fault).
 */
export interface RouteDecision {
  /** A name for the route (rule name or index), for metrics and logs. */
  name: string;
  /** The endpoint must carry all of these tags. */
  tags?: Record<string, string>;
  /** Overall timeout in ms for this route (covers all retries); 0 disables. */
  timeout?: number;
  /** Retry policy for this route, replacing the service's. */
  retry?: RetryOptions;
  /** Fault injection for this route, replacing the service's. */
  fault?: FaultOptions;
}

/** The state of one request as it crosses a chain. */
export interface Ctx {
  /** The downstream request as it arrived. */
  readonly req: Request;
  readonly direction: Direction;
  /** Address of the downstream peer (the app for consumer, a sidecar for provider). */
  readonly clientAddress: string;
  /** performance.now() when the request arrived. */
  readonly start: number;
  /**
   * Aborts the upstream call: fires when the downstream client goes away; a timeout handler
   * may replace it with one that also fires on its deadline (reason: a MeshError).
   */
  signal: AbortSignal;

  /** Request method sent upstream. */
  method: string;
  /** Path and query sent upstream (origin-form). */
  path: string;
  /** Headers sent upstream: hop-by-hop ones already removed. */
  headers: Headers;
  /** Body sent upstream; a retrying handler may replace the stream with buffered bytes. */
  body: ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null;

  /** The destination service (the cluster name). */
  service: string;
  /** Set on gRPC calls (the gRPC listeners): `body` is null, the call streams outside the chain. */
  protocol?: "grpc";
  /** The port the caller named in its URL, carried to the provider as X-Forwarded-Port. */
  port?: string;
  /** The caller, when known. */
  source?: Source;
  route?: RouteDecision;
  cluster?: Cluster;
  endpoint?: Endpoint;
  /** Endpoints tried and failed during this request (balancers avoid them on a retry). */
  tried?: Endpoint[];
  /** An endpoint a retry wants to try again (retry `sameEndpoint`); loadBalance honours it while it is available. */
  retryEndpoint?: Endpoint;
  /** Upstream attempts made so far. */
  attempts: number;

  /**
   * Set by the listener when the request asks to switch protocols (WebSocket): the transport
   * calls it with the chosen endpoint in place of an HTTP exchange.
   */
  upgrade?: Upgrader;

  /** The response; set by transport or by a handler that answers itself. */
  res?: Response;
  /** Free space for user handlers. */
  readonly state: Record<string, unknown>;
}

export type Next = () => Promise<void>;

/** Marks a handler that only calls next(): the chain builder leaves it out. */
export const SKIP = Symbol.for("mesher.skip");

/** A handler composes like Hono middleware: do work, `await next()`, look at `ctx.res`. */
export type Handler = (ctx: Ctx, next: Next) => Promise<void> | void;

/** What a handler factory gets when a chain is compiled. */
export interface HandlerEnv {
  readonly config: ResolvedConfig;
  readonly clusters: ClusterManager;
  readonly direction: Direction;
  /** The mesher's metrics (absent when a chain is built outside a running mesher). */
  readonly metrics?: Metrics;
  /** State that outlives one pipeline: handlers keep balancers, breakers, buckets here by key so they survive a reload. */
  readonly store?: Map<string, unknown>;
}

/** Builds a handler once per chain compile. */
export type HandlerFactory = (env: HandlerEnv) => Handler;
