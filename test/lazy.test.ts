/**
 * Heavy modules load only when the config uses them (issue 7: a sidecar's RSS): etcd3,
 * node:http2's gRPC listeners, yaml; the OpenTelemetry SDK, the OTLP/gRPC exporter and
 * SkyWalking's grpc-js clients load in the exporter thread, never in the main one; OTLP/HTTP
 * alone exports from the main thread, with no gRPC client. Each case starts a mesher in a
 * fresh process and reads which modules it loaded.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";

const FIXTURE = join(import.meta.dir, "fixtures/loaded.ts");
const HEAVY = ["etcd3", "yaml", "@grpc/grpc-js", "@opentelemetry/exporter-trace-otlp-grpc", "@opentelemetry/sdk-trace", "src/listeners/grpc.ts"];

async function modulesOf(config: object, waitFor: string[] = []): Promise<{ atStart: string[]; later: string[] }> {
  const p = Bun.spawn(["bun", FIXTURE, JSON.stringify(config), waitFor.join(",")], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`fixture exited ${code}: ${err}`);
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

const base = { service: { name: "shop" }, listen: { consumer: "127.0.0.1:0", admin: "127.0.0.1:0" } };

describe("lazy loading", () => {
  test("a minimal sidecar loads none of the heavy modules", async () => {
    const m = await modulesOf(base);
    expect(m.atStart).toContain("prom-client"); // the probe sees packages at all
    expect(m.later.filter((n) => HEAVY.includes(n))).toEqual([]);
  });

  test("tracing: the SDK and the exporters' gRPC clients load in the exporter thread only", async () => {
    const tracing = { otlp: { endpoint: "127.0.0.1:1" }, skywalking: { serverUri: "127.0.0.1:1" } };
    const m = await modulesOf({ ...base, tracing });
    expect(m.atStart).toContain("src/telemetry/tracing/tracer.ts");
    // The data path's thread never loads them (tracing.test.ts and skywalking.test.ts check
    // that spans and segments arrive).
    for (const heavy of ["@opentelemetry/sdk-trace", "@opentelemetry/exporter-trace-otlp-grpc", "@grpc/grpc-js", "src/telemetry/skywalking/client.ts", "etcd3"]) {
      expect(m.later).not.toContain(heavy);
    }
  });

  test("tracing over OTLP/HTTP alone: the SDK and exporter load in the main thread, no gRPC client", async () => {
    const tracing = { otlp: { endpoint: "127.0.0.1:1", protocol: "http/protobuf" } };
    const m = await modulesOf({ ...base, tracing }, ["@opentelemetry/otlp-exporter-base", "@opentelemetry/otlp-transformer"]);
    expect(m.atStart).not.toContain("@opentelemetry/sdk-trace"); // loaded in the background
    for (const name of ["@opentelemetry/sdk-trace", "@opentelemetry/otlp-exporter-base", "@opentelemetry/otlp-transformer", "src/telemetry/tracing/otlpSpans.ts"]) {
      expect(m.later).toContain(name);
    }
    for (const heavy of ["@grpc/grpc-js", "@opentelemetry/exporter-trace-otlp-grpc", "src/telemetry/tracing/exportWorker.ts"]) expect(m.later).not.toContain(heavy);
  });

  test("an etcd registry loads etcd3, and only then", async () => {
    const m = await modulesOf({ ...base, registry: { kind: "etcd", endpoints: ["http://127.0.0.1:1"] } }, ["etcd3"]);
    expect(m.later).toContain("etcd3");
    expect(m.later).not.toContain("@opentelemetry/sdk-trace");
    const dns = await modulesOf({ ...base, registry: { kind: "dns", servers: ["127.0.0.1:1"] } });
    expect(dns.later).not.toContain("etcd3");
  });

  test("a gRPC listener loads its module", async () => {
    const m = await modulesOf({ ...base, listen: { ...base.listen, grpc: "127.0.0.1:0" } });
    expect(m.atStart).toContain("src/listeners/grpc.ts");
    expect(m.atStart).not.toContain("@grpc/grpc-js");
  });
});
