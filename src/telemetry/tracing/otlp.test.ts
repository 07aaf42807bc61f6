import { describe, expect, test } from "bun:test";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { BatchSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace";
import { CountingExporter, CountingProcessor } from "./otlp.ts";

/** An exporter standing in for a collector that fails, or never answers (fault injection). */
class FaultyExporter implements SpanExporter {
  pending: ((r: ExportResult) => void)[] = [];
  constructor(private readonly mode: "fail" | "hang" | "ok") {}
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    if (this.mode === "fail") done({ code: ExportResultCode.FAILED });
    else if (this.mode === "ok") done({ code: ExportResultCode.SUCCESS });
    else this.pending.push(done);
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

function setup(mode: "fail" | "hang" | "ok", maxQueue: number) {
  let dropped = 0;
  const inner = new FaultyExporter(mode);
  const exporter = new CountingExporter(inner, (n) => (dropped += n));
  const batch = new BatchSpanProcessor({ exporter, maxQueueSize: maxQueue, maxExportBatchSize: maxQueue, scheduledDelayMillis: 60_000 });
  const provider = new TracerProvider({ spanProcessors: [new CountingProcessor(batch, exporter, maxQueue, (n) => (dropped += n))] });
  const tracer = provider.getTracer("t");
  return { inner, provider, end: (n: number) => { for (let i = 0; i < n; i++) tracer.startSpan("s").end(); }, dropped: () => dropped };
}

describe("dropped spans are counted", () => {
  test("a full queue drops (and counts) what does not fit; spans in flight do not count against it", async () => {
    const t = setup("hang", 3);
    t.end(3); // a full batch goes out at once, and hangs
    t.end(3); // queued behind it
    expect(t.dropped()).toBe(0);
    t.end(2); // no room
    expect(t.dropped()).toBe(2);
    for (const done of t.inner.pending) done({ code: ExportResultCode.SUCCESS });
  });

  test("a failed export counts its spans", async () => {
    const t = setup("fail", 10);
    t.end(4);
    await t.provider.forceFlush();
    expect(t.dropped()).toBe(4);
  });
});
