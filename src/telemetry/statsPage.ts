/**
 * `/stats` on the admin port, as go-micro's sidecar had: JSON for `Accept: application/json`
 * (or `?format=json`), else a small self-contained page (inline HTML + JS, no build step) that
 * polls the JSON every few seconds and shows request rate, error rate and latency
 * percentiles per service, and the state of every endpoint.
 */
import { Hono } from "hono";
import type { Runtime } from "../listeners/runtime.ts";
import { isAvailable } from "../upstream/cluster.ts";
import type { ClusterManager } from "../upstream/clusters.ts";
import { WINDOW_MS, WINDOWS, type SeriesStats } from "./stats.ts";

/** Breaker states by "service" or "service/endpoint-address", when a circuit breaker reports them. */
export type BreakerStates = () => Record<string, string>;

export interface EndpointState {
  address: string;
  /** UP, DOWN (registry or health check) or EJECTED (outlier detection). */
  state: "UP" | "DOWN" | "EJECTED";
  available: boolean;
  active: number;
  breaker: string | null;
}

export interface StatsJson {
  service: string;
  version: string;
  started: string;
  uptimeSeconds: number;
  windowSeconds: number;
  windows: number;
  memory: { rss: number; heapUsed: number };
  inflight: number;
  services: SeriesStats[];
  clusters: { name: string; breaker: string | null; endpoints: EndpointState[] }[];
}

export function statsJson(rt: Runtime, clusters: ClusterManager, breakers?: BreakerStates, now = Date.now()): StatsJson {
  const stats = rt.telemetry.stats;
  const mem = process.memoryUsage();
  const b = breakers?.() ?? {};
  return {
    service: rt.pipeline.config.service.name,
    version: rt.pipeline.config.service.version,
    started: new Date(stats.startedAt).toISOString(),
    uptimeSeconds: Math.round((now - stats.startedAt) / 1000),
    windowSeconds: WINDOW_MS / 1000,
    windows: WINDOWS,
    memory: { rss: mem.rss, heapUsed: mem.heapUsed },
    inflight: rt.inflight,
    services: stats.read(now),
    clusters: clusters.all().map((c) => ({
      name: c.name,
      breaker: b[c.name] ?? null,
      endpoints: c.endpoints.map((e) => ({
        address: e.address,
        state: e.status === "DOWN" ? "DOWN" : e.ejectedUntil > now ? "EJECTED" : "UP",
        available: isAvailable(e, now),
        active: e.active,
        breaker: b[`${c.name}/${e.address}`] ?? null,
      })),
    })),
  };
}

export function statsRoutes(rt: Runtime, clusters: ClusterManager, breakers?: BreakerStates): Hono {
  const app = new Hono();
  app.get("/stats", (c) => {
    const json = c.req.query("format") === "json" || (c.req.header("accept") ?? "").includes("application/json");
    if (json) return c.json(statsJson(rt, clusters, breakers));
    c.header("cache-control", "no-store");
    return c.html(PAGE);
  });
  return app;
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mesher stats</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
  h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
  .meta { color: #666; }
  table { border-collapse: collapse; min-width: 40rem; }
  th, td { border-bottom: 1px solid #ddd; padding: .3rem .6rem; text-align: right; }
  th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
  th { background: #f4f4f4; }
  .UP { color: #176f2c; font-weight: 600; }
  .DOWN, .EJECTED, .open { color: #b3261e; font-weight: 600; }
  .err { color: #b3261e; }
  .spark { font-family: monospace; letter-spacing: -1px; color: #555; }
</style>
</head>
<body>
<h1>mesher <span id="service">…</span></h1>
<div class="meta">up <span id="uptime">-</span> s · RSS <span id="rss">-</span> MB · in flight <span id="inflight">-</span> ·
  updated <span id="updated">never</span> · every <span id="every">2</span> s</div>
<div id="error" class="err"></div>
<h2>Requests (last 30 s)</h2>
<table id="services">
  <thead><tr><th>service</th><th>direction</th><th>req/s</th><th>error rate</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>total</th><th>errors</th><th>last 2 min</th></tr></thead>
  <tbody></tbody>
</table>
<h2>Endpoints</h2>
<table id="endpoints">
  <thead><tr><th>cluster</th><th>endpoint</th><th>state</th><th>breaker</th><th>active</th></tr></thead>
  <tbody></tbody>
</table>
<script>
const params = new URLSearchParams(location.search);
const every = Math.max(0.2, Number(params.get("interval")) || 2);
document.getElementById("every").textContent = every;
const bars = "▁▂▃▄▅▆▇█";
function spark(windows) {
  const max = Math.max(1, ...windows.map((w) => w.total));
  return windows.map((w) => bars[Math.min(7, Math.floor((w.total / max) * 7))]).join("");
}
function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}
const fmt = (x) => (x === null || x === undefined ? "-" : String(x));
async function refresh() {
  try {
    const res = await fetch("/stats", { headers: { accept: "application/json" }, cache: "no-store" });
    const s = await res.json();
    document.getElementById("service").textContent = s.service + " " + s.version;
    document.getElementById("uptime").textContent = s.uptimeSeconds;
    document.getElementById("rss").textContent = (s.memory.rss / 1048576).toFixed(1);
    document.getElementById("inflight").textContent = s.inflight;
    const sb = document.querySelector("#services tbody");
    sb.replaceChildren();
    for (const x of s.services) {
      const r = sb.insertRow();
      r.dataset.service = x.service;
      r.dataset.direction = x.direction;
      cell(r, x.service); cell(r, x.direction);
      cell(r, x.rate.toFixed(2)).dataset.k = "rate";
      cell(r, (x.errorRate * 100).toFixed(1) + "%", x.errorRate > 0 ? "err" : "").dataset.k = "errorRate";
      cell(r, fmt(x.latencyMs.p50)).dataset.k = "p50";
      cell(r, fmt(x.latencyMs.p90)).dataset.k = "p90";
      cell(r, fmt(x.latencyMs.p99)).dataset.k = "p99";
      cell(r, x.requests).dataset.k = "requests";
      cell(r, x.errors, x.errors ? "err" : "").dataset.k = "errors";
      cell(r, spark(x.windows), "spark");
    }
    if (!s.services.length) cell(sb.insertRow(), "no requests yet");
    const eb = document.querySelector("#endpoints tbody");
    eb.replaceChildren();
    for (const c of s.clusters) {
      for (const e of c.endpoints) {
        const r = eb.insertRow();
        r.dataset.endpoint = e.address;
        cell(r, c.name); cell(r, e.address);
        cell(r, e.state, e.state).dataset.k = "state";
        const br = e.breaker ?? c.breaker;
        cell(r, fmt(br), br === "open" ? "open" : "").dataset.k = "breaker";
        cell(r, e.active);
      }
    }
    document.getElementById("updated").textContent = new Date().toLocaleTimeString();
    document.getElementById("error").textContent = "";
    document.body.dataset.refreshed = String((Number(document.body.dataset.refreshed) || 0) + 1);
  } catch (err) {
    document.getElementById("error").textContent = "cannot read /stats: " + err;
  }
}
refresh();
setInterval(refresh, every * 1000);
</script>
</body>
</html>
`;
