import { describe, expect, test } from "bun:test";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { BatchSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace";
import { CountingExporter, CountingProcessor, DeferredExporter } from "./otlp.ts";

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

describe("an exporter still loading", () => {
  test("spans ended before it has loaded are exported once it has", async () => {
    let loaded!: (e: SpanExporter) => void;
    const inner = new FaultyExporter("hang");
    let dropped = 0;
    const exporter = new CountingExporter(new DeferredExporter(new Promise((r) => (loaded = r))), (n) => (dropped += n));
    const provider = new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: 60_000 })] });
    const tracer = provider.getTracer("t");
    for (let i = 0; i < 3; i++) tracer.startSpan("s").end();
    const flushed = provider.forceFlush();
    await Bun.sleep(0);
    expect(inner.pending.length).toBe(0); // nothing to hand it to yet
    loaded(inner);
    for (let i = 0; i < 100 && inner.pending.length === 0; i++) await Bun.sleep(1);
    expect(inner.pending.length).toBe(1);
    inner.pending[0]!({ code: ExportResultCode.SUCCESS });
    await flushed;
    expect(dropped).toBe(0);
  });

  test("a module that fails to load counts the spans as dropped", async () => {
    let dropped = 0;
    const exporter = new CountingExporter(new DeferredExporter(Promise.reject(new Error("no such module"))), (n) => (dropped += n));
    const provider = new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: 60_000 })] });
    for (let i = 0; i < 2; i++) provider.getTracer("t").startSpan("s").end();
    await provider.forceFlush().catch(() => undefined); // rejects: the export failed
    expect(dropped).toBe(2);
    await provider.shutdown(); // resolves: nothing to close
  });
});
