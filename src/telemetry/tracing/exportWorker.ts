/**
 * The exporter thread (started by exportThread.ts): makes the OpenTelemetry spans of the
 * SpanRecords it is sent, with the ids and times the hops chose, and exports them over
 * OTLP/gRPC through the SDK's BatchSpanProcessor; hands SkyWalking segments to the reporter.
 * What is dropped (a full queue, a failed export) is reported back to be counted in
 * mesher_dropped_spans_total.
 */
import { createTraceState, ROOT_CONTEXT, SpanStatusCode, trace, TraceFlags } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { AlwaysOnSampler, BatchSpanProcessor, TracerProvider, type IdGenerator } from "@opentelemetry/sdk-trace";
import type { Tracer } from "@opentelemetry/api";
import { CountingExporter, CountingProcessor, otlpExporter } from "./otlp.ts";
import { SkyWalkingReporter } from "../skywalking/reporter.ts";
import type { Exporter, ExportOptions, FromWorker, SpanRecord, ToWorker } from "./exportThread.ts";

declare const self: Worker;

/** The SDK's id source while a record becomes a span: the ids the hop chose (and propagated). */
class PresetIds implements IdGenerator {
  traceId = "";
  spanId = "";
  generateTraceId(): string {
    return this.traceId;
  }
  generateSpanId(): string {
    return this.spanId;
  }
}

const reply = (m: FromWorker) => self.postMessage(m);
const ids = new PresetIds();
let provider: TracerProvider | undefined;
let tracer: Tracer | undefined;
let reporter: SkyWalkingReporter | undefined;

const dropper = (exporter: Exporter) => (n: number) => reply({ type: "dropped", exporter, n });

function init(o: ExportOptions): void {
  if (o.skywalking) reporter = new SkyWalkingReporter(o.skywalking, o.identity, o, dropper("skywalking"));
  if (o.otlp) initOtlp(o, o.otlp);
}

function initOtlp(o: ExportOptions, otlp: NonNullable<ExportOptions["otlp"]>): void {
  const drop = dropper("otlp");
  const exporter = new CountingExporter(otlpExporter(otlp.endpoint, otlp.timeout), drop);
  const batch = new BatchSpanProcessor({
    exporter,
    scheduledDelayMillis: o.flushInterval,
    maxQueueSize: o.maxQueue,
    maxExportBatchSize: Math.min(512, o.maxQueue),
    exportTimeoutMillis: otlp.timeout,
  });
  provider = new TracerProvider({
    resource: resourceFromAttributes({
      "service.name": o.identity.service,
      "service.version": o.identity.version,
      "service.namespace": o.identity.app,
      "service.instance.id": o.identity.instance,
    }),
    // The decision was taken on the data path; the SDK records what it gets.
    sampler: new AlwaysOnSampler(),
    idGenerator: ids,
    spanProcessors: [new CountingProcessor(batch, exporter, o.maxQueue, drop)],
  });
  tracer = provider.getTracer("mesher");
}

function record(f: SpanRecord): void {
  ids.traceId = f.traceId;
  ids.spanId = f.spanId;
  const p = f.parent;
  const parent = p
    ? trace.setSpanContext(ROOT_CONTEXT, {
        traceId: p.traceId,
        spanId: p.spanId,
        traceFlags: TraceFlags.SAMPLED,
        isRemote: true,
        traceState: p.traceState ? createTraceState(p.traceState) : undefined,
      })
    : ROOT_CONTEXT;
  const span = tracer!.startSpan(f.name, { kind: f.kind, attributes: f.attributes, startTime: f.startTime }, parent);
  if (f.failed) span.setStatus({ code: SpanStatusCode.ERROR, message: f.message });
  span.end(f.endTime);
}

self.onmessage = async (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  switch (m.type) {
    case "init":
      return init(m.options);
    case "batch":
      if (m.count) for (const f of JSON.parse(m.spans) as SpanRecord[]) record(f);
      for (const s of m.segments) reporter?.add(s);
      return;
    case "flush":
      await Promise.all([provider?.forceFlush().catch(() => {}), reporter?.flush()]);
      return reply({ type: "done", id: m.id });
    case "shutdown":
      await Promise.all([provider?.shutdown().catch(() => {}), reporter?.shutdown()]);
      return reply({ type: "done", id: m.id });
  }
};
