/**
 * The exporter thread (started by exportThread.ts): OTLP export (otlpSpans.ts) of the span
 * records it is sent, and SkyWalking segments handed to the reporter. What is dropped (a full
 * queue, a failed export) is reported back to be counted in mesher_dropped_spans_total.
 */
import { OtlpSpans } from "./otlpSpans.ts";
import { SkyWalkingReporter } from "../skywalking/reporter.ts";
import type { Exporter, ExportOptions, FromWorker, SpanRecord, ToWorker } from "./exportThread.ts";

declare const self: Worker;

const reply = (m: FromWorker) => self.postMessage(m);
let otlp: OtlpSpans | undefined;
let reporter: SkyWalkingReporter | undefined;

const dropper = (exporter: Exporter) => (n: number) => reply({ type: "dropped", exporter, n });

function init(o: ExportOptions): void {
  if (o.skywalking) reporter = new SkyWalkingReporter(o.skywalking, o.identity, o, dropper("skywalking"));
  if (o.otlp) otlp = new OtlpSpans(o, o.otlp, dropper("otlp"));
}

self.onmessage = async (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  switch (m.type) {
    case "init":
      return init(m.options);
    case "batch":
      if (m.count && otlp) otlp.add(JSON.parse(m.spans) as SpanRecord[]);
      for (const s of m.segments) reporter?.add(s);
      return;
    case "flush":
      await Promise.all([otlp?.flush(), reporter?.flush()]);
      return reply({ type: "done", id: m.id });
    case "shutdown":
      await Promise.all([otlp?.shutdown(), reporter?.shutdown()]);
      return reply({ type: "done", id: m.id });
  }
};
