/**
 * OTLP export of finished hops: turns SpanRecords into the SDK's ReadableSpans, with the ids and
 * times the hops chose, and exports them over OTLP (gRPC or HTTP: otlp.ts) through the SDK's
 * BatchSpanProcessor. What is dropped (a full queue, a failed export) is reported to be counted
 * in mesher_dropped_spans_total. Runs on the exporter thread (exportWorker.ts), or, for
 * OTLP/HTTP, on the main thread (exportThread.ts says why).
 *
 * A record becomes a ReadableSpan (the interface processors and exporters take) directly, not
 * through a Tracer: the SDK makes a span only with ids from its IdGenerator and a live clock,
 * and going through it (a preset-ids generator, startSpan, end) took 1.8 µs per span besides
 * JIT compilations of its span class long into a run (bench/NOTES.md). The span is what the
 * SDK's Tracer would make of it: the parent's trace state carried, attributes sanitized.
 */
import { createTraceState, SpanStatusCode, TraceFlags, type SpanContext } from "@opentelemetry/api";
import { hrTimeDuration, millisToHrTime, sanitizeAttributes, type InstrumentationScope } from "@opentelemetry/core";
import { resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import { BatchSpanProcessor, type ReadableSpan, type SpanProcessor } from "@opentelemetry/sdk-trace";
import { CountingExporter, CountingProcessor, otlpExporter, type OtlpOptions } from "./otlp.ts";
import type { ExportOptions, SpanRecord } from "./exportThread.ts";

/** The instrumentation scope of every span (a Tracer named "mesher"). */
const SCOPE: InstrumentationScope = { name: "mesher" };
const UNSET = { code: SpanStatusCode.UNSET };

export class OtlpSpans {
  readonly #processor: SpanProcessor;
  readonly #resource: Resource;

  constructor(o: ExportOptions, otlp: OtlpOptions, dropped: (n: number) => void) {
    const exporter = new CountingExporter(otlpExporter(otlp), dropped);
    const batch = new BatchSpanProcessor({
      exporter,
      scheduledDelayMillis: o.flushInterval,
      maxQueueSize: o.maxQueue,
      maxExportBatchSize: Math.min(512, o.maxQueue),
      exportTimeoutMillis: otlp.timeout,
    });
    this.#resource = resourceFromAttributes({
      "service.name": o.identity.service,
      "service.version": o.identity.version,
      "service.namespace": o.identity.app,
      "service.instance.id": o.identity.instance,
    });
    this.#processor = new CountingProcessor(batch, exporter, o.maxQueue, dropped);
  }

  add(records: readonly SpanRecord[]): void {
    for (const f of records) this.#processor.onEnd(readable(f, this.#resource));
  }

  /** Resolves once what was added so far has been exported (or dropped). Never rejects. */
  flush(): Promise<void> {
    return this.#processor.forceFlush().catch(() => {});
  }

  /** Exports what is left and closes the exporter. Never rejects. */
  shutdown(): Promise<void> {
    return this.#processor.shutdown().catch(() => {});
  }
}

/** The finished span of a record. */
function readable(f: SpanRecord, resource: Resource): ReadableSpan {
  const p = f.parent;
  const parent: SpanContext | undefined = p
    ? {
        traceId: p.traceId,
        spanId: p.spanId,
        traceFlags: TraceFlags.SAMPLED,
        isRemote: true,
        traceState: p.traceState ? createTraceState(p.traceState) : undefined,
      }
    : undefined;
  const context: SpanContext = { traceId: f.traceId, spanId: f.spanId, traceFlags: TraceFlags.SAMPLED, traceState: parent?.traceState };
  const startTime = millisToHrTime(f.startTime);
  const endTime = millisToHrTime(Math.max(f.startTime, f.endTime));
  return {
    name: f.name,
    kind: f.kind,
    spanContext: () => context,
    parentSpanContext: parent,
    startTime,
    endTime,
    duration: hrTimeDuration(startTime, endTime),
    status: f.failed ? { code: SpanStatusCode.ERROR, message: f.message } : UNSET,
    attributes: sanitizeAttributes(f.attributes),
    links: [],
    events: [],
    ended: true,
    resource,
    instrumentationScope: SCOPE,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}
