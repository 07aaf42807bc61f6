/**
 * Live request statistics for the /stats page: per direction and service, a ring of 5-second
 * windows (24 kept, two minutes, as go-micro's sidecar stats did) with counts by status class,
 * errors, and a latency histogram. Rates and percentiles are read over the last 30 seconds.
 *
 * Hand-rolled on purpose: one Uint32Array of log-scale buckets per window is all a live page
 * needs; a library histogram per window per service would allocate far more on the hot path.
 */

export const WINDOW_MS = 5000;
export const WINDOWS = 24;
/** Rates and percentiles are taken over this many recent windows (30 s). */
const RECENT = 6;

/** Bucket i holds latencies up to BASE_MS * GROWTH^i (5% apart, 0.05 ms .. ~60 s). */
const BASE_MS = 0.05;
const GROWTH = 1.05;
const BUCKETS = 290;
const LOG_GROWTH = Math.log(GROWTH);

function bucketOf(ms: number): number {
  if (ms <= BASE_MS) return 0;
  return Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / BASE_MS) / LOG_GROWTH));
}

interface Window {
  start: number;
  total: number;
  errors: number;
  /** Counts for 1xx..5xx at index 1..5. */
  classes: [number, number, number, number, number, number];
  latency: Uint32Array;
}

function newWindow(start: number): Window {
  return { start, total: 0, errors: 0, classes: [0, 0, 0, 0, 0, 0], latency: new Uint32Array(BUCKETS) };
}

/** What the page and `/stats` JSON show for one direction + service. */
export interface SeriesStats {
  direction: string;
  service: string;
  /** Since start. */
  requests: number;
  errors: number;
  /** Requests per second over the last 30 s. */
  rate: number;
  /** Share of the last 30 s's requests that failed (0..1). */
  errorRate: number;
  /** Latency percentiles over the last 30 s in ms (bucket upper bounds, within 5%); null with no requests. */
  latencyMs: { p50: number | null; p90: number | null; p99: number | null };
  statusCodes: { "1xx": number; "2xx": number; "3xx": number; "4xx": number; "5xx": number };
  /** The kept windows, oldest first: { start (epoch ms), total, errors }. */
  windows: { start: number; total: number; errors: number }[];
}

export class Series {
  readonly windows: Window[] = [];
  requests = 0;
  errors = 0;
  readonly classes: [number, number, number, number, number, number] = [0, 0, 0, 0, 0, 0];
  constructor(
    readonly direction: string,
    readonly service: string,
  ) {}

  current(now: number): Window {
    const start = now - (now % WINDOW_MS);
    let w = this.windows[this.windows.length - 1];
    if (!w || w.start !== start) {
      w = newWindow(start);
      this.windows.push(w);
      if (this.windows.length > WINDOWS) this.windows.shift();
    }
    return w;
  }

  read(now: number, startedAt: number): SeriesStats {
    const from = now - (now % WINDOW_MS) - (RECENT - 1) * WINDOW_MS;
    const merged = new Uint32Array(BUCKETS);
    let total = 0;
    let errors = 0;
    for (const w of this.windows) {
      if (w.start < from) continue;
      total += w.total;
      errors += w.errors;
      for (let i = 0; i < BUCKETS; i++) merged[i]! += w.latency[i]!;
    }
    const seconds = Math.max(0.001, (now - Math.max(from, startedAt)) / 1000);
    const pct = (p: number): number | null => {
      if (total === 0) return null;
      const rank = Math.ceil(p * total);
      let seen = 0;
      for (let i = 0; i < BUCKETS; i++) {
        seen += merged[i]!;
        if (seen >= rank) return Math.round(BASE_MS * GROWTH ** i * 1000) / 1000;
      }
      return null;
    };
    const c = this.classes;
    return {
      direction: this.direction,
      service: this.service,
      requests: this.requests,
      errors: this.errors,
      rate: Math.round((total / seconds) * 100) / 100,
      errorRate: total ? Math.round((errors / total) * 10000) / 10000 : 0,
      latencyMs: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99) },
      statusCodes: { "1xx": c[1], "2xx": c[2], "3xx": c[3], "4xx": c[4], "5xx": c[5] },
      windows: this.windows.map((w) => ({ start: w.start, total: w.total, errors: w.errors })),
    };
  }
}

export class Stats {
  readonly startedAt = Date.now();
  readonly #series = new Map<string, Series>();

  /** Counts one request. An error is a mesher error code or a 5xx. */
  record(direction: string, service: string, status: number, failed: boolean, ms: number, now = Date.now()): void {
    this.count(this.series(direction, service), status, failed, ms, now);
  }

  /** The series of a direction and service (a caller may keep it for the next such request). */
  series(direction: string, service: string): Series {
    const key = `${direction}\u0000${service}`;
    let s = this.#series.get(key);
    if (!s) this.#series.set(key, (s = new Series(direction, service)));
    return s;
  }

  /** Counts one request in a series found by `series`. */
  count(s: Series, status: number, failed: boolean, ms: number, now = Date.now()): void {
    const w = s.current(now);
    const cls = Math.floor(status / 100);
    s.requests++;
    w.total++;
    if (cls >= 1 && cls <= 5) {
      s.classes[cls]!++;
      w.classes[cls]!++;
    }
    if (failed) {
      s.errors++;
      w.errors++;
    }
    w.latency[bucketOf(ms)]!++;
  }

  read(now = Date.now()): SeriesStats[] {
    return [...this.#series.values()]
      .map((s) => s.read(now, this.startedAt))
      .sort((a, b) => a.service.localeCompare(b.service) || a.direction.localeCompare(b.direction));
  }
}
