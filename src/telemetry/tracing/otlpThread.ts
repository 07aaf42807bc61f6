/**
 * The OTLP exporter on its own thread. The data path records a finished hop as a plain
 * SpanRecord; records go to a Worker (otlpWorker.ts) in batches, where the OpenTelemetry SDK
 * makes the spans, batches them (BatchSpanProcessor) and sends them with the design card's
 * OTLP/gRPC exporter. Making span objects, serialising and gRPC never run on the event loop
 * that serves requests: measured in-process at 1% sampling, they stalled it up to 10-25 ms
 * once per export and doubled the p99 at a fixed 3,000 req/s (bench/NOTES.md, change 9).
 * The SDK and grpc-js load in the worker only, never in the main thread.
 */
import type { Attributes } from "@opentelemetry/api";
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

export interface OtlpOptions {
  endpoint: string;
  timeout: number;
  flushInterval: number;
  maxQueue: number;
  identity: TraceIdentity;
}

/** Main thread -> worker. */
export type ToWorker =
  | { type: "init"; options: OtlpOptions }
  | { type: "spans"; spans: SpanRecord[] }
  | { type: "flush" | "shutdown"; id: number };

/** Worker -> main thread. */
export type FromWorker = { type: "dropped"; n: number } | { type: "done"; id: number };

/** Bun's Worker has Node's ref/unref (not in the DOM typings). */
type BunWorker = Worker & { ref(): void; unref(): void };

export class OtlpThread {
  readonly #worker: BunWorker;
  readonly #waiting = new Map<number, () => void>();
  #next = 0;
  #failed = false;
  #closed = false;

  constructor(
    options: OtlpOptions,
    private readonly dropped: (n: number) => void,
  ) {
    this.#worker = new Worker(new URL("./otlpWorker.ts", import.meta.url).href) as BunWorker;
    // Idle, the worker does not keep the process alive; it is held while a flush is awaited.
    this.#worker.unref();
    this.#worker.onmessage = (e: MessageEvent<FromWorker>) => {
      const m = e.data;
      if (m.type === "dropped") this.dropped(m.n);
      else this.#settle(m.id);
    };
    this.#worker.onerror = (e: ErrorEvent) => {
      if (!this.#failed) console.error("mesher: the OTLP exporter thread failed (spans are dropped and counted):", e.message);
      this.#failed = true;
      for (const id of [...this.#waiting.keys()]) this.#settle(id);
    };
    this.#post({ type: "init", options });
  }

  /** Hands finished spans to the exporter thread. */
  send(spans: SpanRecord[]): void {
    if (this.#failed || this.#closed) return this.dropped(spans.length);
    this.#post({ type: "spans", spans });
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
      if (m.type === "spans") this.dropped(m.spans.length);
      else if (m.type !== "init") this.#settle(m.id);
      if (!this.#failed) console.error("mesher: could not hand spans to the exporter thread:", (err as Error).message);
    }
  }
}
