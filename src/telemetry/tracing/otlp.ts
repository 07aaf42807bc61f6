/**
 * The OTLP exporters (gRPC, HTTP), wrapped so that what they fail to deliver is counted: a
 * collector that is down costs dropped spans (a metric), never requests.
 */
import type { Context } from "@opentelemetry/api";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import type { BatchSpanProcessor, ReadableSpan, Span, SpanExporter, SpanProcessor } from "@opentelemetry/sdk-trace";
import type { TracingOptions } from "../schema.ts";

export type OtlpOptions = NonNullable<TracingOptions["otlp"]>;

/**
 * The OTLP exporter for `protocol`. "grpc" is the design card's exporter; "http/protobuf"
 * posts the same protobuf request over HTTP/1.1 with fetch to `/v1/traces`, or to the path the
 * endpoint names, as OpenTelemetry's OTEL_EXPORTER_OTLP_TRACES_ENDPOINT does. "host:port"
 * means plaintext. The modules (for gRPC: grpc-js and Node's http2, ~17 MB of RSS in the
 * exporter thread; for HTTP a few MB) are imported in the background, so a sidecar pays for
 * them only with `otlp` configured and its start never waits for them.
 */
export function otlpExporter(o: OtlpOptions): SpanExporter {
  const url = o.endpoint.includes("://") ? o.endpoint : `http://${o.endpoint}`;
  const timeoutMillis = o.timeout;
  // gRPC metadata keys are lower case; HTTP names are case-insensitive: one form for both.
  const headers = Object.fromEntries(Object.entries(o.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  if (o.protocol === "http/protobuf") {
    const target = /^[a-z]+:\/\/[^/]+\/?$/i.test(url) ? `${url.replace(/\/$/, "")}/v1/traces` : url;
    return new DeferredExporter(
      Promise.all([
        import("@opentelemetry/otlp-exporter-base"),
        import("@opentelemetry/otlp-exporter-base/node-http"),
        import("@opentelemetry/otlp-exporter-base/browser-http"),
        import("@opentelemetry/otlp-transformer"),
      ]).then(([{ OTLPExporterBase }, node, fetchHttp, { ProtobufTraceSerializer, TraceExporterMetricsHelper }]) => {
        // exporter-trace-otlp-proto's OTLPTraceExporter, assembled from its parts with the
        // fetch transport (its browser build's, exported under the deprecated name
        // createOtlpSendBeaconExportDelegate) in place of Node's http client: the same
        // configuration (OTEL_EXPORTER_OTLP_* included), serialiser and retries on Bun's native
        // fetch, which lets it run on the main thread (exportThread.ts) without node:http's
        // client and agent.
        const options = node.convertLegacyHttpOptions({ url: target, timeoutMillis, headers }, "TRACES", "v1/traces", { "Content-Type": "application/x-protobuf" });
        const metrics = node.createOtlpHttpExporterMetrics("otlp_http_span_exporter", TraceExporterMetricsHelper, options.url, undefined);
        return new OTLPExporterBase(fetchHttp.createOtlpSendBeaconExportDelegate(options, ProtobufTraceSerializer, metrics)) as SpanExporter;
      }),
    );
  }
  return new DeferredExporter(
    Promise.all([import("@opentelemetry/exporter-trace-otlp-grpc"), import("@grpc/grpc-js")]).then(([{ OTLPTraceExporter }, { Metadata }]) => {
      const metadata = new Metadata();
      for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
      return new OTLPTraceExporter({ url, timeoutMillis, metadata });
    }),
  );
}

/**
 * An exporter whose inner one is still loading. The batch processor keeps queueing spans
 * meanwhile (its queue bounds them, and counts what it drops); a batch handed over before the
 * load finishes is exported once it has. If the load fails, every batch fails (and is counted
 * as dropped by the CountingExporter around this).
 */
export class DeferredExporter implements SpanExporter {
  #inner?: SpanExporter;
  #error?: Error;
  readonly #ready: Promise<SpanExporter | undefined>;

  constructor(load: Promise<SpanExporter>) {
    this.#ready = load.then(
      (inner) => (this.#inner = inner),
      (err: unknown) => {
        this.#error = err instanceof Error ? err : new Error(String(err));
        console.error("mesher: the OTLP exporter failed to load (spans are dropped and counted):", this.#error.message);
        return undefined;
      },
    );
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    if (this.#inner) return this.#inner.export(spans, done);
    void this.#ready.then((inner) => (inner ? inner.export(spans, done) : done({ code: ExportResultCode.FAILED, error: this.#error })));
  }

  async shutdown(): Promise<void> {
    await (await this.#ready)?.shutdown();
  }

  async forceFlush(): Promise<void> {
    await (await this.#ready)?.forceFlush?.();
  }
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
