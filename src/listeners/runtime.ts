import type { Pipeline } from "../pipeline/build.ts";
import type { Telemetry } from "../telemetry/index.ts";
import type { Metrics } from "../telemetry/metrics.ts";

/** What listeners share: the current pipeline (swapped whole on reload) and process-wide state. */
export interface Runtime {
  pipeline: Pipeline;
  /** Unique per process; marks requests this sidecar forwarded, to catch loops. */
  readonly id: string;
  readonly metrics: Metrics;
  /** Tracing, metrics, live stats and access log, recorded once per request in runChain. */
  readonly telemetry: Telemetry;
  /** "host:port" of this sidecar's own listeners, filled in once they are bound. */
  readonly selfAddresses: Set<string>;
  /** Requests being handled now, across listeners. */
  inflight: number;
}
