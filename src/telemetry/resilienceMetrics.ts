/**
 * Counters of the traffic-management handlers, in the mesher's own registry. Labels stay
 * bounded: service names come from config or discovery, endpoints are cluster members.
 */
import { Counter, type Registry } from "prom-client";

export class ResilienceMetrics {
  readonly retries: Counter<"service_name" | "reason">;
  readonly breakerStateChanges: Counter<"service_name" | "breaker" | "state">;
  readonly breakerRejections: Counter<"service_name" | "reason">;
  readonly ejections: Counter<"service_name" | "endpoint">;
  readonly rateLimited: Counter<"service_name" | "side">;
  readonly faults: Counter<"service_name" | "kind">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.retries = new Counter({ name: "retries_total", help: "Upstream attempts retried, by the condition that triggered the retry", labelNames: ["service_name", "reason"], registers });
    this.breakerStateChanges = new Counter({ name: "circuit_breaker_state_changes_total", help: "Circuit breaker transitions, by the state entered (open, half_open, closed)", labelNames: ["service_name", "breaker", "state"], registers });
    this.breakerRejections = new Counter({ name: "circuit_breaker_rejections_total", help: "Requests refused by a circuit breaker (circuit_open) or its bulkhead (max_concurrent)", labelNames: ["service_name", "reason"], registers });
    this.ejections = new Counter({ name: "outlier_ejections_total", help: "Endpoints ejected by outlier detection", labelNames: ["service_name", "endpoint"], registers });
    this.rateLimited = new Counter({ name: "rate_limited_total", help: "Requests refused with 429 by a rate limit", labelNames: ["service_name", "side"], registers });
    this.faults = new Counter({ name: "faults_injected_total", help: "Faults injected, by kind (delay, abort)", labelNames: ["service_name", "kind"], registers });
  }
}
