/**
 * Counters and histograms for the per-request path, exposed through a prom-client Registry.
 *
 * prom-client's bound children (`counter.labels(...).inc()`) still validate and hash their
 * label values on every call, and a histogram observation hashes them again and walks its
 * buckets through an object: about 1 µs per request for mesher's eight series, measured as
 * part of the ~6 µs telemetry cost per request in bench/NOTES.md ("Change 3"). A series
 * here is a plain object the caller keeps and bumps (`series.value++`); prom-client still
 * does the exposition: each metric implements the shape its Registry reads (`get()` returning
 * name, help, type and values, as prom-client's own Counter and Histogram do), so `/metrics`
 * prints exactly what prom-client's metrics would.
 */
import type { Registry } from "prom-client";

type Labels = Record<string, string>;

/** One labelled counter series: increment `value`. */
export interface CounterSeries {
  value: number;
}

/** One labelled histogram series: call `observe`. */
export interface HistogramSeries {
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/** What prom-client's Registry reads from a metric (its own Counter and Histogram give the same). */
interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
  sharedLabels?: Labels;
}

abstract class HotMetric<S> {
  readonly aggregator = "sum";
  protected readonly series = new Map<string, { labels: Labels; s: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    // Registry.registerMetric takes any object with this shape; typed for prom-client's classes.
    registry.registerMetric(this as never);
  }

  /** The series of these label values (in `labelNames` order), created on first use: keep it. */
  labels(...values: string[]): S {
    const key = values.join("\u0000");
    let e = this.series.get(key);
    if (!e) {
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i] ?? ""));
      this.series.set(key, (e = { labels, s: this.create() }));
    }
    return e.s;
  }

  protected abstract create(): S;

  reset(): void {
    this.series.clear();
  }
}

export class HotCounter extends HotMetric<CounterSeries> {
  readonly type = "counter";

  protected create(): CounterSeries {
    return { value: 0 };
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values = [...this.series.values()].map(({ labels, s }) => ({ labels, value: s.value }));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export class HotHistogram extends HotMetric<HistogramSeries> {
  readonly type = "histogram";

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[],
    registry: Registry,
  ) {
    super(name, help, labelNames, registry);
  }

  protected create(): HistogramSeries {
    return { counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
  }

  /** Records one value in a series of this histogram. */
  observe(s: HistogramSeries, value: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values: MetricValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, s } of this.series.values()) {
      // Cumulative buckets, then +Inf, _sum and _count, in prom-client's order and shape.
      let acc = 0;
      this.buckets.forEach((le, i) => {
        acc += s.counts[i]!;
        values.push({ labels: { le }, value: acc, metricName: bucket, sharedLabels: labels });
      });
      values.push({ labels: { le: "+Inf" }, value: s.count, metricName: bucket, sharedLabels: labels });
      values.push({ labels: {}, value: s.sum, metricName: `${this.name}_sum`, sharedLabels: labels });
      values.push({ labels: {}, value: s.count, metricName: `${this.name}_count`, sharedLabels: labels });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
