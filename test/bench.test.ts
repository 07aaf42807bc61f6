import { expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, run, tempDir, waitForLine } from "./helpers.ts";

// The benchmark itself never runs in CI; this runs its harness in smoke mode (1 s per row)
// to keep `bun run bench` working. It needs wrk and nginx (Debian: wrk, nginx-light).
const tools = Boolean(Bun.which("wrk") && Bun.which("nginx", { PATH: `${process.env.PATH}:/usr/sbin` }));

test.skipIf(!tools)("bun run bench --smoke prints a row for each path", async () => {
  const r = await run(["bun", "bench/run.ts", "--smoke", "--rows", "direct,one,two,nginx,one-otlphttp"]);
  expect(r.stderr).not.toContain("error:");
  expect(r.code).toBe(0);
  for (const label of ["app direct", "mesher, 1 hop", "mesher, 2 hops", "nginx", "mesher, 1 hop, OTLP/HTTP"]) {
    // Closed-loop row: a req/s figure, then p50/p99; fixed-rate row: the achieved rate.
    const rows = r.stdout.split("\n").filter((l) => l.startsWith(`| ${label} | `));
    expect(rows.length).toBe(2);
    const cells = rows[0]!.split("|").map((c) => c.trim());
    expect(Number(cells[2])).toBeGreaterThan(0); // req/s
    expect(cells[9]).toBe("0"); // errors
  }
  // Peak RSS of each mesher: after its first seconds at the fixed rate, and over the run.
  expect(r.stdout).toMatch(/\| one \| \d+\.\d \| \d+\.\d \|/);
  expect(r.stdout).toMatch(/\| two-provider \| \d+\.\d \| \d+\.\d \|/);
}, 30_000);

test("the bench collector counts the spans real OTLP/gRPC and OTLP/HTTP exporters send it", async () => {
  const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-grpc");
  const { OTLPTraceExporter: OTLPHttpExporter } = await import("@opentelemetry/exporter-trace-otlp-proto");
  const { BatchSpanProcessor, TracerProvider } = await import("@opentelemetry/sdk-trace");
  const dir = tempDir();
  const file = join(dir, "spans");
  const proc = Bun.spawn(["bun", "bench/collector.ts"], { cwd: ROOT, env: { ...process.env, SPANS_FILE: file }, stdout: "pipe", stderr: "inherit" });
  try {
    const [, address, http] = await waitForLine(proc.stdout, /^collector (\S+) http=(\S+)$/);
    for (const [exporter, n] of [
      [new OTLPTraceExporter({ url: `http://${address}` }), 700],
      [new OTLPHttpExporter({ url: `http://${http}/v1/traces` }), 300],
    ] as const) {
      const provider = new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter, maxExportBatchSize: 256 })] });
      // Two instrumentation scopes: a request's spans come in several scope_spans.
      for (let i = 0; i < n; i++) provider.getTracer(i % 2 ? "a" : "b").startSpan(`span ${i}`, { attributes: { i } }).end();
      await provider.forceFlush();
      await provider.shutdown();
    }
    // The collector writes its count each second; wait for it to reach 1000 (never more).
    let count = 0;
    const deadline = Date.now() + 10_000;
    while (count < 1000 && Date.now() < deadline) {
      await Bun.sleep(50);
      count = existsSync(file) ? Number(readFileSync(file, "utf8")) : 0;
    }
    expect(count).toBe(1000);
  } finally {
    proc.kill();
  }
}, 20_000);
