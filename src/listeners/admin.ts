/**
 * The admin API (Hono), on its own port: Mesher's /v1/mesher/* paths plus Envoy-style
 * /ready, /config_dump and /clusters.
 */
import { Hono } from "hono";
import pkg from "../../package.json" with { type: "json" };
import type { DiscoveryRuntime } from "../discovery/index.ts";
import { registryApi } from "../discovery/registryApi.ts";
import { isAvailable } from "../upstream/cluster.ts";
import type { ClusterManager } from "../upstream/clusters.ts";
import type { Runtime } from "./runtime.ts";
import { statsRoutes } from "../telemetry/statsPage.ts";

export interface AdminDeps {
  rt: Runtime;
  clusters: ClusterManager;
  isReady: () => boolean;
  /** Route rules of a service as the router holds them; undefined when it has none. */
  routeRules?: (service: string) => unknown;
  /** Discovery, when a registry is configured: /registry and the registry's state on /clusters. */
  discovery?: DiscoveryRuntime;
  /** Reloads the config from its file; absent when the mesher has no file to reload. */
  reload?: () => Promise<{ ok: true; version: number } | { ok: false; error: string }>;
  /** Circuit breaker states by label ("svc", "svc/host:port"), for /stats. */
  breakers?: () => Record<string, string>;
}

/** Hono's c.text leaves the type to the runtime, and Bun's answer was application/octet-stream. */
const TEXT = { "content-type": "text/plain; charset=utf-8" };

const SECRET_KEY = /(secret|password|passwd|token|private|credential|^key$|keyfile$|apikey)/i;

/** The resolved config with secrets masked and functions shown by name. */
export function maskConfig(value: unknown, key = ""): unknown {
  if (typeof value === "function") return `[function ${value.name || "anonymous"}]`;
  if (value === null || typeof value !== "object") {
    return key && SECRET_KEY.test(key) && value !== undefined ? "***" : value;
  }
  if (Array.isArray(value)) return value.map((x) => maskConfig(x));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(value)) out[k] = maskConfig(x, k);
  return out;
}

export function adminApp({ rt, clusters, isReady, routeRules, reload, breakers, discovery }: AdminDeps): Hono {
  const app = new Hono();
  const started = new Date().toISOString();

  app.get("/v1/mesher/health", (c) =>
    c.json({
      serviceName: rt.pipeline.config.service.name,
      version: rt.pipeline.config.service.version,
      status: isReady() ? "green" : "red",
      connectedMonitoring: false,
      error: isReady() ? "" : "listeners are not up",
    }, isReady() ? 200 : 500),
  );
  app.get("/v1/mesher/version", (c) =>
    c.json({ version: pkg.version, commit: process.env.MESHER_COMMIT ?? "", built: started, runtime: `bun ${Bun.version}` }),
  );
  app.get("/v1/mesher/metrics", async (c) => {
    c.header("content-type", rt.metrics.contentType);
    return c.body(await rt.metrics.text());
  });
  app.get("/v1/mesher/routeRule/:service", (c) => {
    const service = c.req.param("service");
    const rules = routeRules?.(service);
    if (rules === undefined) return c.text(`${service} routeRule not found`, 404, TEXT);
    return c.json(rules);
  });
  // A mutation: POST only (Envoy's admin refuses other methods for mutations).
  app.post("/v1/mesher/reload", async (c) => {
    if (!reload) return c.json({ error: { code: "not_supported", message: "started without a config file: nothing to reload" } }, 501);
    const r = await reload();
    if (r.ok) return c.json({ reloaded: true, version: r.version });
    return c.json({ error: { code: "invalid_config", message: r.error }, version: rt.pipeline.version }, 400);
  });
  app.all("/v1/mesher/reload", (c) => {
    c.header("allow", "POST");
    return c.json({ error: { code: "method_not_allowed", message: "reload is a mutation: use POST" } }, 405);
  });
  app.get("/ready", (c) => (isReady() ? c.text("LIVE\n", 200, TEXT) : c.text("NOT READY\n", 503, TEXT)));
  app.get("/config_dump", (c) =>
    c.json({ version: rt.pipeline.version, config: maskConfig(rt.pipeline.config) }),
  );
  app.get("/clusters", (c) => {
    const now = Date.now();
    const stale = clusters.staleOrigins();
    return c.json({
      registry: discovery?.status(),
      clusters: clusters.all().map((cl) => ({
        name: cl.name,
        endpoints: cl.endpoints.map((e) => ({
          address: e.address,
          tags: e.tags,
          weight: e.weight,
          origin: e.origin,
          status: e.status,
          available: isAvailable(e, now),
          ejected: e.ejectedUntil > now,
          active: e.active,
          stale: stale.has(e.origin),
        })),
      })),
    });
  });
  app.route("/", statsRoutes(rt, clusters, breakers));
  if (discovery) app.route("/registry", registryApi(discovery.registry));
  app.notFound((c) => c.json({ error: { code: "not_found", message: `no admin endpoint ${c.req.path}` } }, 404));
  return app;
}
