/**
 * Prometheus metrics with Mesher's names (`requests_total`, `successes_total`,
 * `failures_total`, `status_4xx`, `status_5xx`, `request_latency_seconds`,
 * `start_time_seconds`), labelled `service_name, app, version`. Built on prom-client; each
 * mesher owns its registry (several can run in one process, as tests do). Children are bound
 * once per label set so the hot path only increments.
 *
 * Beside Mesher's names, mesher's own (prefixed `mesher_`): requests by direction, service,
 * route, endpoint, status class and error code; latency histograms by direction, service,
 * route and status class; dropped spans by exporter; in-flight requests and open
 * connections; and prom-client's process/runtime set (RSS, heap, event-loop lag, fds).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { ResilienceMetrics } from "./resilienceMetrics.ts";

const LABELS = ["service_name", "app", "version"] as const;

type BoundCounter = ReturnType<Counter["labels"]>;
interface Bound {
  requests: BoundCounter;
  successes: BoundCounter;
  failures: BoundCounter;
  s4xx: BoundCounter;
  s5xx: BoundCounter;
  latency: ReturnType<Histogram["labels"]>;
}

export class Metrics {
  readonly registry = new Registry();
  readonly #requests = new Counter({ name: "requests_total", help: "Requests handled", labelNames: LABELS, registers: [this.registry] });
  readonly #successes = new Counter({ name: "successes_total", help: "Responses with status 200..226", labelNames: LABELS, registers: [this.registry] });
  readonly #failures = new Counter({ name: "failures_total", help: "Responses with status 4xx or 5xx", labelNames: LABELS, registers: [this.registry] });
  readonly #s4xx = new Counter({ name: "status_4xx", help: "Responses with status 400..451", labelNames: LABELS, registers: [this.registry] });
  readonly #s5xx = new Counter({ name: "status_5xx", help: "Responses with status 500..511", labelNames: LABELS, registers: [this.registry] });
  readonly #latency = new Histogram({
    name: "request_latency_seconds",
    help: "Time from request arrival to response headers",
    labelNames: LABELS,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly #bound = new Map<string, Bound>();
  /** 1 while a registry is unreachable and its last known endpoints stay in service. */
  readonly registryStale = new Gauge({
    name: "mesher_registry_stale",
    help: "1 while the registry cannot be reached (last known endpoints stay in service)",
    labelNames: ["registry"],
    registers: [this.registry],
  });
  /** Retries, breaker transitions, ejections, rate-limit rejections, injected faults. */
  readonly resilience = new ResilienceMetrics(this.registry);

  readonly #hopRequests = new Counter({
    name: "mesher_requests_total",
    help: "Requests by direction, destination service, route, endpoint, status class and mesher error code",
    labelNames: ["direction", "service", "route", "endpoint", "status_class", "error_code"] as const,
    registers: [this.registry],
  });
  readonly #hopLatency = new Histogram({
    name: "mesher_request_duration_seconds",
    help: "Time from request arrival to response headers, by direction, service, route and status class",
    labelNames: ["direction", "service", "route", "status_class"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly #droppedSpans = new Counter({
    name: "mesher_dropped_spans_total",
    help: "Spans (OTLP) or segments (SkyWalking) an exporter could not deliver",
    labelNames: ["exporter"] as const,
    registers: [this.registry],
  });
  readonly #hopBound = new Map<string, { requests: BoundCounter; latency: ReturnType<Histogram["labels"]> }>();
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
    this.record(r.service, r.app, r.version, r.status, r.seconds);
    const statusClass = `${Math.floor(r.status / 100)}xx`;
    const key = `${r.direction}\u0000${r.service}\u0000${r.route}\u0000${r.endpoint}\u0000${statusClass}\u0000${r.errorCode}`;
    let b = this.#hopBound.get(key);
    if (!b) {
      b = {
        requests: this.#hopRequests.labels(r.direction, r.service, r.route, r.endpoint, statusClass, r.errorCode),
        latency: this.#hopLatency.labels(r.direction, r.service, r.route, statusClass),
      };
      this.#hopBound.set(key, b);
    }
    b.requests.inc();
    b.latency.observe(r.seconds);
  }

  /** Counts spans or segments an exporter dropped. */
  droppedSpans(exporter: string, n: number): void {
    this.#droppedSpans.labels(exporter).inc(n);
  }

  #bind(service: string, app: string, version: string): Bound {
    const key = `${service}\u0000${app}\u0000${version}`;
    let b = this.#bound.get(key);
    if (!b) {
      const l = { service_name: service, app, version };
      b = {
        requests: this.#requests.labels(l),
        successes: this.#successes.labels(l),
        failures: this.#failures.labels(l),
        s4xx: this.#s4xx.labels(l),
        s5xx: this.#s5xx.labels(l),
        latency: this.#latency.labels(l),
      };
      this.#bound.set(key, b);
    }
    return b;
  }

  /** Records one finished request (at response headers). */
  record(service: string, app: string, version: string, status: number, seconds: number): void {
    const b = this.#bind(service, app, version);
    b.requests.inc();
    if (status >= 200 && status <= 226) b.successes.inc();
    else if (status >= 400 && status <= 451) {
      b.failures.inc();
      b.s4xx.inc();
    } else if (status >= 500 && status <= 511) {
      b.failures.inc();
      b.s5xx.inc();
    }
    b.latency.observe(seconds);
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
