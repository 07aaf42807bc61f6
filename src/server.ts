/**
 * Starts a mesher from a resolved config: builds the pipeline, opens the listeners, and
 * offers reload (swap the pipeline whole) and a graceful stop (drain, then close).
 */
import type { ResolvedConfig } from "./config/schema.ts";
import { createDiscovery, type DiscoveryRuntime } from "./discovery/index.ts";
import { adminApp } from "./listeners/admin.ts";
import { consumerConnect, consumerHandler } from "./listeners/consumer.ts";
import { edgeHandler } from "./listeners/edge.ts";
import type { GrpcListener } from "./listeners/grpc.ts";
import { DEFAULT_GRPC_ADDRESS } from "./listeners/ingressSchema.ts";
import { providerHandler } from "./listeners/provider.ts";
import type { Runtime } from "./listeners/runtime.ts";
import { boundAddress, serveHttp, type FastPath, type Listener } from "./listeners/serve.ts";
import { consumerDirector, fastPathUseful, providerDirector, type Director } from "./listeners/fastdirect.ts";
import { serveFastPath } from "./listeners/fastpath.ts";
import { routeRulesOf } from "./handlers/router/index.ts";
import { buildPipeline, staticEndpoints } from "./pipeline/build.ts";
import { StateStore } from "./pipeline/store.ts";
import { breakerStates } from "./handlers/circuitBreaker/index.ts";
import { servesConnect } from "./egress/match.ts";
import { Telemetry } from "./telemetry/index.ts";
import { Metrics } from "./telemetry/metrics.ts";
import { ClusterManager } from "./upstream/clusters.ts";

/** The outcome of a reload from the config's source. */
export type ReloadResult = { ok: true; version: number } | { ok: false; error: string };

export interface MesherOptions {
  /** Reads the config afresh (from its file): enables reloadFromSource and POST /v1/mesher/reload. */
  load?: () => Promise<ResolvedConfig>;
}

export interface Mesher {
  /** Bound "host:port" of each open listener (ports chosen by the OS when 0 was asked). */
  readonly addresses: Readonly<Addresses>;
  readonly clusters: ClusterManager;
  readonly runtime: Runtime;
  /** Discovery and self-registration; undefined without a `registry` in the config. */
  readonly discovery?: DiscoveryRuntime;
  /** Applies a new resolved config; in-flight requests finish on the old pipeline. */
  reload(config: ResolvedConfig): void;
  /**
   * Reads the config again through `options.load` and applies it. An invalid config is
   * refused with its errors logged and the current one keeps serving. Reloads run one at a time.
   */
  reloadFromSource(): Promise<ReloadResult>;
  /** Stops accepting, lets in-flight requests finish (up to drainTimeout), then closes. */
  stop(): Promise<void>;
}

export interface Addresses {
  /** "" when listen.consumer is false. */
  consumer: string;
  provider?: string;
  admin?: string;
  /** Edge mode's gateway listener. */
  edge?: string;
  grpc?: string;
  grpcProvider?: string;
}

/**
 * The gRPC listeners' module, loaded only when one is configured (node:http2 costs ~6 MB of
 * RSS). Synchronous (Bun's require of an ES module): startMesher reports bound addresses.
 */
const serveGrpc: typeof import("./listeners/grpc.ts").serveGrpc = (...args) => require("./listeners/grpc.ts").serveGrpc(...args);

export function startMesher(config: ResolvedConfig, options: MesherOptions = {}): Mesher {
  const clusters = new ClusterManager();
  clusters.setOrigin("static", staticEndpoints(config));
  let version = 1;
  // Balancer, breaker and bucket state, kept across reloads by the handlers that own it.
  const extras = { metrics: new Metrics(), store: new StateStore() };
  const id = `${config.service.name}-${crypto.randomUUID().slice(0, 8)}`;
  const rt: Runtime = {
    pipeline: buildPipeline(config, clusters, version, extras),
    id,
    metrics: extras.metrics,
    telemetry: new Telemetry(extras.metrics, id, config),
    selfAddresses: new Set(),
    inflight: 0,
  };
  const discovery = createDiscovery(config, clusters, rt.metrics.registryStale);
  extras.metrics.inflight = () => rt.inflight;
  let ready = false;
  const servers: Listener[] = [];
  const opts = { idleTimeout: config.listen.idleTimeout, maxRequestBodySize: config.maxRequestBodySize };
  const addresses: Addresses = { consumer: "" };
  const grpcListeners: GrpcListener[] = [];
  const tls = config.listen.tls ?? {};
  /** The fast path in front of a listener (listen.fastPath; serveHttp leaves it out with TLS). */
  const fastPath = (direct: Director, side: "consumer" | "provider"): FastPath | undefined =>
    config.listen.fastPath === true || (config.listen.fastPath === "auto" && fastPathUseful(config, side))
      ? { start: (host, port, regular, peers) => serveFastPath(host, port, rt, direct, regular, peers, { idleTimeoutSeconds: Math.min(255, Math.ceil(config.listen.idleTimeout / 1000)) }) }
      : undefined;

  try {
    if (config.listen.consumer) {
      const consumer = serveHttp(config.listen.consumer, consumerHandler(rt), {
        ...opts,
        tls: tls.consumer,
        connect: servesConnect(config.listen.connect, config.egress) ? consumerConnect(rt) : undefined,
      }, fastPath(consumerDirector(rt, clusters), "consumer"));
      servers.push(consumer);
      addresses.consumer = boundAddress(consumer);
    }
    if (config.listen.provider) {
      const provider = serveHttp(config.listen.provider, providerHandler(rt), { ...opts, tls: tls.provider }, fastPath(providerDirector(rt), "provider"));
      servers.push(provider);
      addresses.provider = boundAddress(provider);
    }
    if (config.listen.admin) {
      const app = adminApp({
        rt,
        clusters,
        isReady: () => ready,
        routeRules: (s) => routeRulesOf(rt.pipeline.config, s),
        reload: options.load && (() => reloadFromSource()),
        breakers: () => breakerStates(extras.store),
        discovery,
      });
      const admin = serveHttp(config.listen.admin, (req) => app.fetch(req), { ...opts, tls: tls.admin });
      servers.push(admin);
      addresses.admin = boundAddress(admin);
    }
    if (config.mode === "edge") {
      // TLS for the edge listener comes with serveHttp's TLS options (listeners work).
      const edge = serveHttp(config.listen.edge, edgeHandler(rt, clusters), { ...opts, tls: tls.edge });
      servers.push(edge);
      addresses.edge = boundAddress(edge);
    }
    if (config.listen.grpc) {
      const address = config.listen.grpc === true ? DEFAULT_GRPC_ADDRESS : config.listen.grpc;
      const g = serveGrpc(address, rt, "consumer", clusters, tls.grpc);
      grpcListeners.push(g);
      addresses.grpc = g.address;
    }
    if (config.listen.grpcProvider) {
      const g = serveGrpc(config.listen.grpcProvider, rt, "provider", clusters, tls.grpcProvider);
      grpcListeners.push(g);
      addresses.grpcProvider = g.address;
    }
  } catch (err) {
    for (const g of grpcListeners) void g.close(false);
    for (const s of servers) s.stop(true);
    void rt.telemetry.stop();
    void discovery?.stop();
    throw err;
  }
  for (const a of Object.values(addresses).filter(Boolean)) {
    rt.selfAddresses.add(a!.toLowerCase());
    // The app may name the sidecar as localhost or 127.0.0.1 for the same listener.
    const port = a!.slice(a!.lastIndexOf(":") + 1);
    if (a!.startsWith("127.") || a!.startsWith("0.0.0.0") || a!.startsWith("[::")) {
      rt.selfAddresses.add(`localhost:${port}`).add(`127.0.0.1:${port}`);
    }
  }
  // Bun.serve counts requests and WebSockets, not sockets: the closest it has to connections.
  extras.metrics.connections = () => servers.reduce((n, s) => n + s.pendingRequests + s.pendingWebSockets, 0);
  ready = true;
  discovery?.registerSelf(addresses.provider, rt.id.slice(rt.id.lastIndexOf("-") + 1), addresses.grpcProvider);

  function reload(next: ResolvedConfig): void {
    // Build first: a config that fails to compile changes nothing.
    const pipeline = buildPipeline(next, clusters, version + 1, extras);
    clusters.setOrigin("static", staticEndpoints(next));
    discovery?.reload(next);
    version++;
    rt.pipeline = pipeline;
    if (servesConnect(next.listen.connect, next.egress) && !servesConnect(config.listen.connect, config.egress)) {
      console.warn("mesher: the new egress rules allow CONNECT, but the consumer listener started without it: restart to serve CONNECT");
    }
    if (next.listen.fastPath !== config.listen.fastPath) {
      console.warn("mesher: listen.fastPath changed: it takes effect at the next restart");
    }
    rt.telemetry.configure(next);
    extras.store.sweep();
  }

  let reloading: Promise<unknown> = Promise.resolve();
  function reloadFromSource(): Promise<ReloadResult> {
    const run = async (): Promise<ReloadResult> => {
      if (!options.load) return { ok: false, error: "this mesher was not started from a config file" };
      try {
        reload(await options.load());
        console.log(`mesher: config reloaded (version ${version})`);
        return { ok: true, version };
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        console.error(`mesher: config reload refused, keeping version ${version}: ${error}`);
        return { ok: false, error };
      }
    };
    const result = reloading.then(run, run);
    reloading = result;
    return result;
  }

  let stopping: Promise<void> | undefined;
  return {
    addresses,
    clusters,
    runtime: rt,
    discovery,
    reload,
    reloadFromSource,
    stop() {
      stopping ??= (async () => {
        ready = false;
        // Deregister first, so callers stop choosing this sidecar while it drains.
        if (discovery) await discovery.stop();
        const drained = Promise.all([...servers.map((s) => s.stop(false)), ...grpcListeners.map((g) => g.close(true))]);
        let timer: Timer | undefined;
        const timeout = new Promise<void>((r) => (timer = setTimeout(r, rt.pipeline.config.drainTimeout)));
        await Promise.race([drained, timeout]);
        clearTimeout(timer);
        await Promise.all([...servers.map((s) => s.stop(true)), ...grpcListeners.map((g) => g.close(false))]);
        await rt.telemetry.stop();
      })();
      return stopping;
    },
  };
}
