/**
 * Starts a mesher from a resolved config: builds the pipeline, opens the listeners, and
 * offers reload (swap the pipeline whole) and a graceful stop (drain, then close).
 */
import type { ResolvedConfig } from "./config/schema.ts";
import { adminApp } from "./listeners/admin.ts";
import { consumerConnect, consumerHandler } from "./listeners/consumer.ts";
import { providerHandler } from "./listeners/provider.ts";
import type { Runtime } from "./listeners/runtime.ts";
import { boundAddress, serveHttp, type Listener } from "./listeners/serve.ts";
import { buildPipeline, staticEndpoints } from "./pipeline/build.ts";
import { Metrics } from "./telemetry/metrics.ts";
import { ClusterManager } from "./upstream/clusters.ts";

export interface Mesher {
  /** Bound "host:port" of each open listener (ports chosen by the OS when 0 was asked). */
  readonly addresses: Readonly<{ consumer: string; provider?: string; admin?: string }>;
  readonly clusters: ClusterManager;
  readonly runtime: Runtime;
  /** Applies a new resolved config; in-flight requests finish on the old pipeline. */
  reload(config: ResolvedConfig): void;
  /** Stops accepting, lets in-flight requests finish (up to drainTimeout), then closes. */
  stop(): Promise<void>;
}

export function startMesher(config: ResolvedConfig): Mesher {
  const clusters = new ClusterManager();
  clusters.setOrigin("static", staticEndpoints(config));
  let version = 1;
  const rt: Runtime = {
    pipeline: buildPipeline(config, clusters, version),
    id: `${config.service.name}-${crypto.randomUUID().slice(0, 8)}`,
    metrics: new Metrics(),
    selfAddresses: new Set(),
    inflight: 0,
  };
  let ready = false;
  const servers: Listener[] = [];
  const opts = { idleTimeout: config.listen.idleTimeout, maxRequestBodySize: config.maxRequestBodySize };
  const addresses: { consumer: string; provider?: string; admin?: string } = { consumer: "" };

  try {
    const tls = config.listen.tls ?? {};
    const consumer = serveHttp(config.listen.consumer, consumerHandler(rt), {
      ...opts,
      tls: tls.consumer,
      connect: config.listen.connect ? consumerConnect(rt) : undefined,
    });
    servers.push(consumer);
    addresses.consumer = boundAddress(consumer);
    if (config.listen.provider) {
      const provider = serveHttp(config.listen.provider, providerHandler(rt), { ...opts, tls: tls.provider });
      servers.push(provider);
      addresses.provider = boundAddress(provider);
    }
    if (config.listen.admin) {
      const app = adminApp({ rt, clusters, isReady: () => ready });
      const admin = serveHttp(config.listen.admin, (req) => app.fetch(req), { ...opts, tls: tls.admin });
      servers.push(admin);
      addresses.admin = boundAddress(admin);
    }
  } catch (err) {
    for (const s of servers) s.stop(true);
    throw err;
  }
  for (const a of Object.values(addresses)) {
    rt.selfAddresses.add(a!.toLowerCase());
    // The app may name the sidecar as localhost or 127.0.0.1 for the same listener.
    const port = a!.slice(a!.lastIndexOf(":") + 1);
    if (a!.startsWith("127.") || a!.startsWith("0.0.0.0") || a!.startsWith("[::")) {
      rt.selfAddresses.add(`localhost:${port}`).add(`127.0.0.1:${port}`);
    }
  }
  ready = true;

  let stopping: Promise<void> | undefined;
  return {
    addresses,
    clusters,
    runtime: rt,
    reload(next) {
      clusters.setOrigin("static", staticEndpoints(next));
      rt.pipeline = buildPipeline(next, clusters, ++version);
    },
    stop() {
      stopping ??= (async () => {
        ready = false;
        const drained = Promise.all(servers.map((s) => s.stop(false)));
        let timer: Timer | undefined;
        const timeout = new Promise<void>((r) => (timer = setTimeout(r, rt.pipeline.config.drainTimeout)));
        await Promise.race([drained, timeout]);
        clearTimeout(timer);
        await Promise.all(servers.map((s) => s.stop(true)));
      })();
      return stopping;
    },
  };
}
