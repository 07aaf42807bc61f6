/**
 * Where finished hops go to be exported. The data path records a finished hop as a plain
 * SpanRecord (OpenTelemetry) and/or SegmentObject (SkyWalking); the tracer hands them over in
 * batches to one of two sinks (startExports):
 * - the exporter thread, a Worker (exportWorker.ts), for OTLP/gRPC (the design card's exporter)
 *   and SkyWalking. Their gRPC client, grpc-js on Node's http2, does not belong on the event loop
 *   that serves requests: measured in-process at 1% sampling, an OTLP/gRPC export stalled it up
 *   to 10-25 ms once per batch and doubled the p99 at a fixed 3,000 req/s (bench/NOTES.md,
 *   change 9; its first seconds in-process still stall 28-36 ms, change 19);
 * - the main thread, for OTLP/HTTP alone: its exporter posts with Bun's native fetch (otlp.ts),
 *   and a batch's serialisation costs the event loop well under a millisecond at that rate,
 *   with the fixed-rate p99 unchanged; a Worker would cost ~10 MB of RSS in steady state
 *   (its own heap and copies of the SDK's modules; change 19).
 * Either way the SDK and the exporters' clients load only when export is configured.
 */
import type { Attributes } from "@opentelemetry/api";
import type { SegmentObject } from "../skywalking/segment.ts";
import type { OtlpOptions } from "./otlp.ts";
import type { TraceIdentity } from "./tracer.ts";

/** A finished hop as its span will be made (ids and times the hop chose). */
export interface SpanRecord {
  name: string;
  /** SpanKind (SERVER 1, CLIENT 2). */
  kind: number;
  attributes: Attributes;
  /** Epoch milliseconds (fractional). */
  startTime: number;
  endTime: number;
  failed: boolean;
  message?: string;
  traceId: string;
  spanId: string;
  /** The remote parent, when the request carried one. */
  parent?: { traceId: string; spanId: string; traceState?: string };
}

export interface ExportOptions {
  identity: TraceIdentity;
  flushInterval: number;
  maxQueue: number;
  otlp?: OtlpOptions;
  skywalking?: { serverUri: string; keepAlive: number };
}

export type Exporter = "otlp" | "skywalking";

/** Main thread -> worker. */
export type ToWorker =
  | { type: "init"; options: ExportOptions }
  /** `spans`: SpanRecord[] as JSON (a string crosses threads several times cheaper than the objects' structured clone). */
  | { type: "batch"; spans: string; count: number; segments: SegmentObject[] }
  | { type: "flush" | "shutdown"; id: number };

/** Worker -> main thread. */
export type FromWorker = { type: "dropped"; exporter: Exporter; n: number } | { type: "done"; id: number };

/** Bun's Worker has Node's ref/unref (not in the DOM typings). */
type BunWorker = Worker & { ref(): void; unref(): void };

/** What the tracer hands finished hops to. */
export interface SpanSink {
  send(spans: SpanRecord[], segments: SegmentObject[]): void;
  /** Resolves once what was sent so far has been exported (or dropped). Never rejects. */
  flush(): Promise<void>;
  /** Exports what is left, then closes. Never rejects. */
  shutdown(): Promise<void>;
}

type DropCounter = (exporter: Exporter, n: number) => void;

/** The sink for `options`: the main thread for OTLP/HTTP alone, else the exporter thread. */
export function startExports(options: ExportOptions, dropped: DropCounter): SpanSink {
  const otlp = options.otlp;
  if (otlp?.protocol === "http/protobuf" && !options.skywalking) return new InProcessExport(options, otlp, dropped);
  return new ExportThread(options, dropped);
}

/**
 * OTLP/HTTP export on the main thread. The SDK and exporter load in the background on the
 * first use; batches sent meanwhile wait (a few milliseconds at start).
 */
class InProcessExport implements SpanSink {
  #spans?: import("./otlpSpans.ts").OtlpSpans;
  #waiting: SpanRecord[][] = [];
  #closed = false;
  readonly #ready: Promise<void>;

  constructor(
    options: ExportOptions,
    otlp: OtlpOptions,
    private readonly dropped: DropCounter,
  ) {
    this.#ready = import("./otlpSpans.ts").then(
      ({ OtlpSpans }) => {
        const spans = new OtlpSpans(options, otlp, (n) => dropped("otlp", n));
        for (const batch of this.#waiting) spans.add(batch);
        this.#waiting = [];
        this.#spans = spans;
      },
      (err: unknown) => {
        console.error("mesher: the OTLP exporter failed to load (spans are dropped and counted):", (err as Error).message);
        for (const batch of this.#waiting) dropped("otlp", batch.length);
        this.#waiting = [];
        this.#closed = true;
      },
    );
  }

  send(spans: SpanRecord[], segments: SegmentObject[]): void {
    if (segments.length) this.dropped("skywalking", segments.length); // not configured: never sent here
    if (!spans.length) return;
    if (this.#closed) this.dropped("otlp", spans.length);
    else if (this.#spans) this.#spans.add(spans);
    else this.#waiting.push(spans);
  }

  async flush(): Promise<void> {
    await this.#ready;
    await this.#spans?.flush();
  }

  async shutdown(): Promise<void> {
    await this.#ready;
    if (this.#closed) return;
    this.#closed = true;
    await this.#spans?.shutdown();
  }
}

/** The exporter thread (a Worker running exportWorker.ts). */
export class ExportThread implements SpanSink {
  readonly #worker: BunWorker;
  readonly #waiting = new Map<number, () => void>();
  #next = 0;
  #failed = false;
  #closed = false;

  constructor(
    options: ExportOptions,
    private readonly dropped: DropCounter,
  ) {
    this.#worker = new Worker(new URL("./exportWorker.ts", import.meta.url).href) as BunWorker;
    // Idle, the worker does not keep the process alive; it is held while a flush is awaited.
    this.#worker.unref();
    this.#worker.onmessage = (e: MessageEvent<FromWorker>) => {
      const m = e.data;
      if (m.type === "dropped") this.dropped(m.exporter, m.n);
      else this.#settle(m.id);
    };
    this.#worker.onerror = (e: ErrorEvent) => {
      if (!this.#failed) console.error("mesher: the trace exporter thread failed (spans are dropped and counted):", e.message);
      this.#failed = true;
      for (const id of [...this.#waiting.keys()]) this.#settle(id);
    };
    this.#post({ type: "init", options });
  }

  /** Hands finished spans and segments to the exporter thread. */
  send(spans: SpanRecord[], segments: SegmentObject[]): void {
    if (this.#failed || this.#closed) return this.#drop(spans.length, segments.length);
    this.#post({ type: "batch", spans: spans.length ? JSON.stringify(spans) : "[]", count: spans.length, segments });
  }

  /** Counts spans and segments that will not be exported. */
  #drop(spans: number, segments: number): void {
    if (spans) this.dropped("otlp", spans);
    if (segments) this.dropped("skywalking", segments);
  }

  /** Resolves once what was sent so far has been exported (or dropped). Never rejects. */
  flush(): Promise<void> {
    return this.#request("flush");
  }

  /** Exports what is left, then ends the thread. Never rejects. */
  async shutdown(): Promise<void> {
    if (this.#closed) return;
    await this.#request("shutdown");
    this.#closed = true;
    this.#worker.terminate();
  }

  #request(type: "flush" | "shutdown"): Promise<void> {
    if (this.#failed || this.#closed) return Promise.resolve();
    const id = ++this.#next;
    this.#worker.ref();
    const done = new Promise<void>((resolve) => this.#waiting.set(id, resolve));
    this.#post({ type, id });
    return done;
  }

  #settle(id: number): void {
    this.#waiting.get(id)?.();
    this.#waiting.delete(id);
    if (this.#waiting.size === 0) this.#worker.unref();
  }

  #post(m: ToWorker): void {
    try {
      this.#worker.postMessage(m);
    } catch (err) {
      // A record that cannot be cloned (should not happen: attributes are plain values).
      if (m.type === "batch") this.#drop(m.count, m.segments.length);
      else if (m.type !== "init") this.#settle(m.id);
      if (!this.#failed) console.error("mesher: could not hand spans to the exporter thread:", (err as Error).message);
    }
  }
}
