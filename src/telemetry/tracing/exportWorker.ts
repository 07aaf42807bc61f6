/**
 * The exporter thread (started by exportThread.ts): turns the SpanRecords it is sent into the
 * SDK's ReadableSpans, with the ids and times the hops chose, and exports them over OTLP (gRPC
 * or HTTP: otlp.ts) through the SDK's BatchSpanProcessor; hands SkyWalking segments to the reporter.
 * What is dropped (a full queue, a failed export) is reported back to be counted in
 * mesher_dropped_spans_total.
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
import { CountingExporter, CountingProcessor, otlpExporter } from "./otlp.ts";
import { SkyWalkingReporter } from "../skywalking/reporter.ts";
import type { Exporter, ExportOptions, FromWorker, SpanRecord, ToWorker } from "./exportThread.ts";

declare const self: Worker;

const reply = (m: FromWorker) => self.postMessage(m);
/** The instrumentation scope of every span (a Tracer named "mesher"). */
const SCOPE: InstrumentationScope = { name: "mesher" };
const UNSET = { code: SpanStatusCode.UNSET };
let processor: SpanProcessor | undefined;
let resource: Resource | undefined;
let reporter: SkyWalkingReporter | undefined;

const dropper = (exporter: Exporter) => (n: number) => reply({ type: "dropped", exporter, n });

function init(o: ExportOptions): void {
  if (o.skywalking) reporter = new SkyWalkingReporter(o.skywalking, o.identity, o, dropper("skywalking"));
  if (o.otlp) initOtlp(o, o.otlp);
}

function initOtlp(o: ExportOptions, otlp: NonNullable<ExportOptions["otlp"]>): void {
  const drop = dropper("otlp");
  const exporter = new CountingExporter(otlpExporter(otlp), drop);
  const batch = new BatchSpanProcessor({
    exporter,
    scheduledDelayMillis: o.flushInterval,
    maxQueueSize: o.maxQueue,
    maxExportBatchSize: Math.min(512, o.maxQueue),
    exportTimeoutMillis: otlp.timeout,
  });
  resource = resourceFromAttributes({
    "service.name": o.identity.service,
    "service.version": o.identity.version,
    "service.namespace": o.identity.app,
    "service.instance.id": o.identity.instance,
  });
  processor = new CountingProcessor(batch, exporter, o.maxQueue, drop);
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

self.onmessage = async (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  switch (m.type) {
    case "init":
      return init(m.options);
    case "batch":
      if (m.count && processor) for (const f of JSON.parse(m.spans) as SpanRecord[]) processor.onEnd(readable(f, resource!));
      for (const s of m.segments) reporter?.add(s);
      return;
    case "flush":
      await Promise.all([processor?.forceFlush().catch(() => {}), reporter?.flush()]);
      return reply({ type: "done", id: m.id });
    case "shutdown":
      await Promise.all([processor?.shutdown().catch(() => {}), reporter?.shutdown()]);
      return reply({ type: "done", id: m.id });
  }
};
