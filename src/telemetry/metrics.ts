/**
 * Prometheus metrics with Mesher's names (`requests_total`, `successes_total`,
 * `failures_total`, `status_4xx`, `status_5xx`, `request_latency_seconds`,
 * `start_time_seconds`), labelled `service_name, app, version`. Built on prom-client; each
 * mesher owns its registry (several can run in one process, as tests do). The per-request
 * series are hot.ts's plain objects, bound once per label set, so the hot path only increments.
 *
 * Beside Mesher's names, mesher's own (prefixed `mesher_`): requests by direction, service,
 * route, endpoint, status class and error code; latency histograms by direction, service,
 * route and status class; dropped spans by exporter; in-flight requests and open
 * connections; and prom-client's process/runtime set (RSS, heap, event-loop lag, fds).
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import { HotCounter, HotHistogram, type CounterSeries, type HistogramSeries } from "./hot.ts";
import { ResilienceMetrics } from "./resilienceMetrics.ts";

const LABELS = ["service_name", "app", "version"] as const;
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Every series one kind of request moves, found once per label combination. */
export interface RequestSeries {
  requests: CounterSeries;
  successes: CounterSeries;
  failures: CounterSeries;
  s4xx: CounterSeries;
  s5xx: CounterSeries;
  latency: HistogramSeries;
  hopRequests: CounterSeries;
  hopLatency: HistogramSeries;
}

const STATUS_CLASS = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx"];

export class Metrics {
  readonly registry = new Registry();
  // The per-request series are hot.ts's (plain objects bumped in place); the rest is prom-client.
  readonly #requests = new HotCounter("requests_total", "Requests handled", LABELS, this.registry);
  readonly #successes = new HotCounter("successes_total", "Responses with status 200..226", LABELS, this.registry);
  readonly #failures = new HotCounter("failures_total", "Responses with status 4xx or 5xx", LABELS, this.registry);
  readonly #s4xx = new HotCounter("status_4xx", "Responses with status 400..451", LABELS, this.registry);
  readonly #s5xx = new HotCounter("status_5xx", "Responses with status 500..511", LABELS, this.registry);
  readonly #latency = new HotHistogram("request_latency_seconds", "Time from request arrival to response headers", LABELS, BUCKETS, this.registry);
  /** 1 while a registry is unreachable and its last known endpoints stay in service. */
  readonly registryStale = new Gauge({
    name: "mesher_registry_stale",
    help: "1 while the registry cannot be reached (last known endpoints stay in service)",
    labelNames: ["registry"],
    registers: [this.registry],
  });
  /** Retries, breaker transitions, ejections, rate-limit rejections, injected faults. */
  readonly resilience = new ResilienceMetrics(this.registry);

  readonly #hopRequests = new HotCounter(
    "mesher_requests_total",
    "Requests by direction, destination service, route, endpoint, status class and mesher error code",
    ["direction", "service", "route", "endpoint", "status_class", "error_code"],
    this.registry,
  );
  readonly #hopLatency = new HotHistogram(
    "mesher_request_duration_seconds",
    "Time from request arrival to response headers, by direction, service, route and status class",
    ["direction", "service", "route", "status_class"],
    BUCKETS,
    this.registry,
  );
  readonly #droppedSpans = new Counter({
    name: "mesher_dropped_spans_total",
    help: "Spans (OTLP) or segments (SkyWalking) an exporter could not deliver",
    labelNames: ["exporter"] as const,
    registers: [this.registry],
  });
  /** Requests the consumer port relayed on its fast path (listen.fastPath): bump `.value`. */
  readonly fastPath = new HotCounter(
    "mesher_fast_path_requests_total",
    "Requests the consumer port relayed on its fast path (listen.fastPath), also counted in the other request metrics",
    [],
    this.registry,
  ).labels();
  /** By all the labels of a request, joined: one string and one lookup per request. */
  readonly #bound = new Map<string, RequestSeries>();
  /** Requests being handled now; set by the owner (the runtime's counter). */
  inflight: () => number = () => 0;
  /** Open downstream connections as the listeners know them; set by the owner. */
  connections: () => number = () => 0;

  constructor() {
    const start = new Gauge({ name: "start_time_seconds", help: "When this mesher started (unix seconds)", registers: [this.registry] });
    start.set(Date.now() / 1000);
    const self = this;
    new Gauge({
      name: "mesher_inflight_requests",
      help: "Requests being handled now, across listeners",
      registers: [this.registry],
      collect() {
        this.set(self.inflight());
      },
    });
    new Gauge({
      name: "mesher_open_connections",
      help: "Open downstream connections (with Bun.serve: requests and WebSockets open now)",
      registers: [this.registry],
      collect() {
        this.set(self.connections());
      },
    });
    // RSS, heap, event-loop lag (perf_hooks histogram), fds, CPU: prom-client's standard set.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 20 });
  }

  /**
   * Records one finished request: Mesher's counters and mesher's per-hop ones. Called once per
   * request from the listener (runChain).
   */
  observe(r: RequestRecord): void {
    this.count(this.series(r), r.status, r.seconds);
  }

  /** The series a request with these labels moves (a caller may keep it for the next such request). */
  series(r: Omit<RequestRecord, "seconds">): RequestSeries {
    const statusClass = STATUS_CLASS[Math.floor(r.status / 100)] ?? `${Math.floor(r.status / 100)}xx`;
    const key = `${r.direction}\u0000${r.service}\u0000${r.app}\u0000${r.version}\u0000${r.route}\u0000${r.endpoint}\u0000${statusClass}\u0000${r.errorCode}`;
    let b = this.#bound.get(key);
    if (!b) this.#bound.set(key, (b = this.#bind(r, statusClass)));
    return b;
  }

  /** Counts one request in series found by `series` for the same status. */
  count(b: RequestSeries, status: number, seconds: number): void {
    b.requests.value++;
    if (status >= 200 && status <= 226) b.successes.value++;
    else if (status >= 400 && status <= 451) {
      b.failures.value++;
      b.s4xx.value++;
    } else if (status >= 500 && status <= 511) {
      b.failures.value++;
      b.s5xx.value++;
    }
    this.#latency.observe(b.latency, seconds);
    b.hopRequests.value++;
    this.#hopLatency.observe(b.hopLatency, seconds);
  }

  #bind(r: Omit<RequestRecord, "seconds">, statusClass: string): RequestSeries {
    const l = [r.service, r.app, r.version] as const;
    return {
      requests: this.#requests.labels(...l),
      successes: this.#successes.labels(...l),
      failures: this.#failures.labels(...l),
      s4xx: this.#s4xx.labels(...l),
      s5xx: this.#s5xx.labels(...l),
      latency: this.#latency.labels(...l),
      hopRequests: this.#hopRequests.labels(r.direction, r.service, r.route, r.endpoint, statusClass, r.errorCode),
      hopLatency: this.#hopLatency.labels(r.direction, r.service, r.route, statusClass),
    };
  }

  /** Counts spans or segments an exporter dropped. */
  droppedSpans(exporter: string, n: number): void {
    this.#droppedSpans.labels(exporter).inc(n);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** One finished request, as the listener reports it. */
export interface RequestRecord {
  direction: string;
  /** Mesher's service_name label: the destination (consumer) or the local service (provider). */
  service: string;
  app: string;
  version: string;
  route: string;
  endpoint: string;
  status: number;
  /** The mesher error code, or "" when the upstream answered. */
  errorCode: string;
  seconds: number;
}
