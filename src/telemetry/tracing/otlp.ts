/**
 * The OTLP/gRPC exporter, wrapped so that what it fails to deliver is counted: a collector
 * that is down costs dropped spans (a metric), never requests.
 */
import type { Context } from "@opentelemetry/api";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import type { BatchSpanProcessor, ReadableSpan, Span, SpanExporter, SpanProcessor } from "@opentelemetry/sdk-trace";

/** The design card's exporter; "host:port" means plaintext. */
export function otlpExporter(endpoint: string, timeoutMs: number): SpanExporter {
  const url = endpoint.includes("://") ? endpoint : `http://${endpoint}`;
  return new OTLPTraceExporter({ url, timeoutMillis: timeoutMs });
}

/** Passes spans on and counts the ones whose export failed. */
export class CountingExporter implements SpanExporter {
  /** Spans handed to the inner exporter and not settled yet. */
  inFlight = 0;
  /** Spans whose export finished, either way. */
  settled = 0;
  constructor(
    private readonly inner: SpanExporter,
    private readonly dropped: (n: number) => void,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inFlight += spans.length;
    let once = false;
    const finish = (result: ExportResult) => {
      if (once) return;
      once = true;
      this.inFlight -= spans.length;
      this.settled += spans.length;
      if (result.code !== ExportResultCode.SUCCESS) this.dropped(spans.length);
      done(result);
    };
    try {
      this.inner.export(spans, finish);
    } catch (error) {
      finish({ code: ExportResultCode.FAILED, error: error as Error });
    }
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown().catch(() => {});
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.().catch(() => {}) ?? Promise.resolve();
  }
}

/**
 * Wraps the SDK's BatchSpanProcessor to count the spans it drops when its queue is full (it
 * drops them silently). Queued = accepted - in flight - settled, which is what it compares
 * with maxQueueSize.
 */
export class CountingProcessor implements SpanProcessor {
  #accepted = 0;
  constructor(
    private readonly inner: BatchSpanProcessor,
    private readonly exporter: CountingExporter,
    private readonly maxQueue: number,
    private readonly dropped: (n: number) => void,
  ) {}

  onStart(span: Span, parent: Context): void {
    this.inner.onStart(span, parent);
  }

  onEnd(span: ReadableSpan): void {
    if (this.#accepted - this.exporter.inFlight - this.exporter.settled >= this.maxQueue) this.dropped(1);
    else this.#accepted++;
    this.inner.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush().catch(() => {});
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown().catch(() => {});
  }
}
