/**
 * Prometheus metrics with Mesher's names (`requests_total`, `successes_total`,
 * `failures_total`, `status_4xx`, `status_5xx`, `request_latency_seconds`,
 * `start_time_seconds`), labelled `service_name, app, version`. Built on prom-client; each
 * mesher owns its registry (several can run in one process, as tests do). Children are bound
 * once per label set so the hot path only increments.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

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
    name: "registry_stale",
    help: "1 while the registry cannot be reached (last known endpoints stay in service)",
    labelNames: ["registry"],
    registers: [this.registry],
  });

  constructor() {
    const start = new Gauge({ name: "start_time_seconds", help: "When this mesher started (unix seconds)", registers: [this.registry] });
    start.set(Date.now() / 1000);
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
