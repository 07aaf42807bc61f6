import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { resolveConfig } from "../src/config/resolve.ts";
import { ConfigError } from "../src/config/errors.ts";
import { formatSw8 } from "../src/telemetry/tracing/propagation.ts";
import { spawnMesher, startEchoApp, tempDir, twoSidecars, viaProxy, waitForLine, closedPort } from "./helpers.ts";
import { startOtlpReceiver } from "./receivers/otlp.ts";
import { startSkyWalkingReceiver } from "./receivers/skywalking.ts";

const NINE = {
  "x-request-id": "9b8c1d7e-0000-4000-8000-000000000001",
  "x-trace-service": "demo-trace-service",
  "x-ot-span-context": "12200912345678abcdef001100112233445566771801",
  "x-client-trace-id": "client-42",
  "x-b3-traceid": "463ac35c9f6413ad48485a3953bb6124",
  "x-b3-spanid": "a2fb4a1d1a96d312",
  "x-b3-parentspanid": "0020000000000001",
  "x-b3-sampled": "1",
  "x-b3-flags": "0",
};

async function echoed(proxy: string, headers: Record<string, string> = {}): Promise<Record<string, string>> {
  const res = await viaProxy(proxy, "http://promotion/items", { headers });
  expect(res.status).toBe(200);
  return (await res.json()).headers;
}

async function metricsText(admin: string): Promise<string> {
  return (await fetch(`http://${admin}/v1/mesher/metrics`)).text();
}

/** The value of one sample line, or 0. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return 0;
}

/**
 * The sidecar's metrics once `exporters` have each counted `n` dropped spans (or segments):
 * flushes and polls, bounded (the exporters' retries end within their timeout).
 */
async function metricsAfterDrops(mesh: ReturnType<typeof twoSidecars>, exporters: string[], n: number): Promise<string> {
  let text = "";
  for (let i = 0; i < 100; i++) {
    await mesh.a.runtime.telemetry.flush();
    text = await metricsText(mesh.a.addresses.admin!);
    if (exporters.every((exporter) => sample(text, "mesher_dropped_spans_total", { exporter }) >= n)) break;
    await Bun.sleep(50);
  }
  return text;
}

describe("tracing unset", () => {
  test("the TSF demo's nine headers, W3C and sw8 flow through both sidecars byte for byte; nothing is added", async () => {
    const app = startEchoApp();
    const mesh = twoSidecars(app.port!);
    try {
      const sw8 = formatSw8({ sampled: true, traceId: "t", segmentId: "s", spanId: 1, service: "a", instance: "b", endpoint: "c", peer: "d" });
      const sent = { ...NINE, traceparent: "00-463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-01", tracestate: "x=1", sw8, "sw8-correlation": "a2V5:dmFsdWU=" };
      const got = await echoed(mesh.proxy, sent);
      for (const [k, v] of Object.entries(sent)) expect(got[k]).toBe(v);
      const bare = await echoed(mesh.proxy);
      expect(bare["x-request-id"]).toBeUndefined();
      expect(bare["traceparent"]).toBeUndefined();
      expect(bare["x-b3-sampled"]).toBeUndefined();
    } finally {
      await mesh.stop();
      app.stop(true);
    }
  });
});

describe("sampling", () => {
  test("sampler 0: no spans; the decision travels as x-b3-sampled: 0; x-request-id is generated; force-trace headers still trace", async () => {
    const otlp = await startOtlpReceiver();
    const app = startEchoApp();
    const tracing = { sampler: 0, flushInterval: 50, otlp: { endpoint: otlp.url } };
    const mesh = twoSidecars(app.port!, { a: { tracing }, b: { tracing } });
    try {
      const got = await echoed(mesh.proxy);
      expect(got["x-b3-sampled"]).toBe("0");
      expect(got["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
      expect(got["traceparent"]).toBeUndefined();
      await Promise.all([mesh.a.runtime.telemetry.flush(), mesh.b.runtime.telemetry.flush()]);
      expect(otlp.spans).toHaveLength(0);

      const forced = await echoed(mesh.proxy, { "x-envoy-force-trace": "true" });
      expect(forced["traceparent"]).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      await otlp.waitFor((s) => s.length === 2);
      const [server, client] = [otlp.spans.find((s) => s.kind === "SPAN_KIND_SERVER")!, otlp.spans.find((s) => s.kind === "SPAN_KIND_CLIENT")!];
      expect(server.parentSpanId).toBe(client.spanId);
      expect(forced["traceparent"]).toContain(server.spanId); // the app sees the provider hop's span as its parent

      const client2 = await echoed(mesh.proxy, { "x-client-trace-id": "abc" });
      expect(client2["x-client-trace-id"]).toBe("abc");
      await otlp.waitFor((s) => s.length === 4);
      expect(otlp.spans.slice(2).every((s) => s.attributes["mesher.client_trace_id"] === "abc")).toBe(true);
    } finally {
      await mesh.stop();
      app.stop(true);
      await otlp.stop();
    }
  });

  test("an unsampled parent is respected even at sampler 1", async () => {
    const otlp = await startOtlpReceiver();
    const app = startEchoApp();
    const tracing = { sampler: 1, flushInterval: 50, otlp: { endpoint: otlp.url } };
    const mesh = twoSidecars(app.port!, { a: { tracing }, b: { tracing } });
    try {
      const tp = "00-463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-00";
      const got = await echoed(mesh.proxy, { traceparent: tp });
      expect(got["traceparent"]).toBe(tp);
      await Promise.all([mesh.a.runtime.telemetry.flush(), mesh.b.runtime.telemetry.flush()]);
      expect(otlp.spans).toHaveLength(0);
    } finally {
      await mesh.stop();
      app.stop(true);
      await otlp.stop();
    }
  });
});

describe("OTLP exporters: over HTTP (protocol: http/protobuf), headers", () => {
  test("both hops' spans reach a collector's POST /v1/traces, one trace; a path in the endpoint is used as given", async () => {
    const otlp = await startOtlpReceiver({ protocol: "http/protobuf" });
    const app = startEchoApp();
    const mesh = twoSidecars(app.port!, {
      a: { tracing: { sampler: 1, flushInterval: 50, otlp: { endpoint: otlp.url, protocol: "http/protobuf" } } },
      b: { tracing: { sampler: 1, flushInterval: 50, otlp: { endpoint: `${otlp.address}/v1/traces`, protocol: "http/protobuf" } } },
    });
    try {
      const got = await echoed(mesh.proxy);
      const spans = await otlp.waitFor((s) => s.length === 2);
      const client = spans.find((s) => s.kind === "SPAN_KIND_CLIENT")!;
      const server = spans.find((s) => s.kind === "SPAN_KIND_SERVER")!;
      expect([client.service, server.service]).toEqual(["shop", "promotion"]);
      expect(server.traceId).toBe(client.traceId);
      expect(server.parentSpanId).toBe(client.spanId);
      expect(got["traceparent"]).toBe(`00-${server.traceId}-${server.spanId}-01`);
      expect(client.attributes["http.response.status_code"]).toBe(200);
      expect(otlp.calls).toBe(2);
    } finally {
      await mesh.stop();
      app.stop(true);
      await otlp.stop();
    }
  });

  test("otlp.headers go with every export: HTTP headers, or gRPC metadata", async () => {
    const receivers = [await startOtlpReceiver({ protocol: "http/protobuf" }), await startOtlpReceiver()];
    const app = startEchoApp();
    const otlp = (r: (typeof receivers)[number], protocol: "grpc" | "http/protobuf") => ({ endpoint: r.url, protocol, headers: { "X-Api-Key": `key-${protocol}` } });
    const mesh = twoSidecars(app.port!, {
      a: { tracing: { sampler: 1, flushInterval: 50, otlp: otlp(receivers[0]!, "http/protobuf") } },
      b: { tracing: { sampler: 1, flushInterval: 50, otlp: otlp(receivers[1]!, "grpc") } },
    });
    try {
      await echoed(mesh.proxy);
      await Promise.all(receivers.map((r) => r.waitFor((s) => s.length === 1)));
      expect(receivers[0]!.headers["x-api-key"]).toBe("key-http/protobuf");
      expect(receivers[0]!.headers["content-type"]).toBe("application/x-protobuf");
      expect(receivers[1]!.headers["x-api-key"]).toBe("key-grpc");
    } finally {
      await mesh.stop();
      app.stop(true);
      await Promise.all(receivers.map((r) => r.stop()));
    }
  });

  test("a collector that answers 404 (a wrong path) costs counted spans, never requests", async () => {
    const otlp = await startOtlpReceiver({ protocol: "http/protobuf" });
    const app = startEchoApp();
    const tracing = { sampler: 1, flushInterval: 50, otlp: { endpoint: `${otlp.url}/v1/spans`, protocol: "http/protobuf" as const, timeout: 1000 } };
    const mesh = twoSidecars(app.port!, { a: { tracing } });
    try {
      for (let i = 0; i < 3; i++) await echoed(mesh.proxy);
      await mesh.a.runtime.telemetry.flush();
      const text = await metricsText(mesh.a.addresses.admin!);
      expect(sample(text, "mesher_dropped_spans_total", { exporter: "otlp" })).toBe(3);
      expect(sample(text, "requests_total", { service_name: "promotion" })).toBe(3);
      expect(otlp.spans).toHaveLength(0);
    } finally {
      await mesh.stop();
      app.stop(true);
      await otlp.stop();
    }
  });
});

describe("OTLP/HTTP alone, exported from the main thread", () => {
  test("spans still buffered when the sidecar stops reach the collector", async () => {
    const otlp = await startOtlpReceiver({ protocol: "http/protobuf" });
    const app = startEchoApp();
    // A long flush interval: nothing is exported before the stop.
    const tracing = { sampler: 1, flushInterval: "1h", otlp: { endpoint: otlp.url, protocol: "http/protobuf" as const } };
    const mesh = twoSidecars(app.port!, { a: { tracing } });
    try {
      for (let i = 0; i < 4; i++) await echoed(mesh.proxy);
      expect(otlp.spans).toHaveLength(0);
    } finally {
      await mesh.stop();
      app.stop(true);
    }
    try {
      expect(otlp.spans.map((s) => s.kind)).toEqual(Array(4).fill("SPAN_KIND_CLIENT"));
      expect(new Set(otlp.spans.map((s) => s.traceId)).size).toBe(4);
    } finally {
      await otlp.stop();
    }
  });

  test("a collector that is down: requests succeed, undelivered spans are counted", async () => {
    const app = startEchoApp();
    const tracing = { flushInterval: 50, otlp: { endpoint: `127.0.0.1:${closedPort()}`, protocol: "http/protobuf" as const, timeout: 300 } };
    const mesh = twoSidecars(app.port!, { a: { tracing } });
    try {
      for (let i = 0; i < 5; i++) await echoed(mesh.proxy);
      const text = await metricsAfterDrops(mesh, ["otlp"], 5);
      expect(sample(text, "mesher_dropped_spans_total", { exporter: "otlp" })).toBe(5);
      expect(sample(text, "requests_total", { service_name: "promotion" })).toBe(5);
    } finally {
      await mesh.stop();
      app.stop(true);
    }
  });
});

describe("collectors that are down", () => {
  test("requests succeed; undelivered spans and segments are counted", async () => {
    const app = startEchoApp();
    const tracing = {
      flushInterval: 50,
      otlp: { endpoint: `127.0.0.1:${closedPort()}`, timeout: 300 },
      skywalking: { serverUri: `127.0.0.1:${closedPort()}` },
    };
    const mesh = twoSidecars(app.port!, { a: { tracing } });
    try {
      for (let i = 0; i < 5; i++) await echoed(mesh.proxy);
      const text = await metricsAfterDrops(mesh, ["otlp", "skywalking"], 5);
      expect(sample(text, "mesher_dropped_spans_total", { exporter: "otlp" })).toBe(5);
      expect(sample(text, "mesher_dropped_spans_total", { exporter: "skywalking" })).toBe(5);
      expect(sample(text, "requests_total", { service_name: "promotion" })).toBe(5);
    } finally {
      await mesh.stop();
      app.stop(true);
    }
  });

  test("a collector that comes up later receives what is sent after it", async () => {
    const oap = await startSkyWalkingReceiver();
    const app = startEchoApp();
    const mesh = twoSidecars(app.port!, { a: { tracing: { flushInterval: 50, skywalking: { serverUri: oap.address } } } });
    try {
      await echoed(mesh.proxy);
      await oap.waitFor((r) => r.segments.length === 1);
      expect(oap.segments[0]!.service).toBe("shop");
    } finally {
      await mesh.stop();
      app.stop(true);
      await oap.stop();
    }
  });
});

describe("metrics", () => {
  test("per-hop counts and latency by direction, route, endpoint and status class; runtime gauges", async () => {
    const app = startEchoApp();
    const mesh = twoSidecars(app.port!);
    try {
      for (let i = 0; i < 3; i++) await echoed(mesh.proxy);
      expect((await viaProxy(mesh.proxy, "http://nowhere/")).status).toBe(403); // neither a service nor egress
      const a = await metricsText(mesh.a.addresses.admin!);
      const b = await metricsText(mesh.b.addresses.admin!);
      const endpoint = mesh.b.addresses.provider!;
      expect(sample(a, "mesher_requests_total", { direction: "consumer", service: "promotion", route: "default", endpoint, status_class: "2xx", error_code: "" })).toBe(3);
      expect(sample(a, "mesher_requests_total", { direction: "consumer", service: "nowhere", status_class: "4xx", error_code: "forbidden" })).toBe(1);
      expect(sample(a, "mesher_request_duration_seconds_count", { direction: "consumer", service: "promotion", status_class: "2xx" })).toBe(3);
      expect(sample(b, "mesher_requests_total", { direction: "provider", service: "promotion", endpoint: `127.0.0.1:${app.port}`, status_class: "2xx" })).toBe(3);
      // Mesher's own names stay.
      expect(sample(a, "requests_total", { service_name: "promotion", app: "demo" })).toBe(3);
      expect(sample(a, "failures_total", { service_name: "nowhere" })).toBe(1);
      expect(sample(a, "status_4xx", { service_name: "nowhere" })).toBe(1);
      for (const gauge of ["process_resident_memory_bytes", "nodejs_heap_size_used_bytes"]) expect(sample(a, gauge)).toBeGreaterThan(0);
      expect(a).toContain("nodejs_eventloop_lag_seconds ");
      expect(a).toContain("mesher_open_connections ");
      expect(a).toContain("mesher_inflight_requests 0");
    } finally {
      await mesh.stop();
      app.stop(true);
    }
  });
});

describe("access log", () => {
  test("JSON lines with error code, upstream endpoint, duration and trace id, written to a file", async () => {
    const otlp = await startOtlpReceiver();
    const dir = tempDir();
    const path = join(dir, "access.log");
    const app = startEchoApp();
    const mesh = twoSidecars(app.port!, { a: { accessLog: { path }, tracing: { otlp: { endpoint: otlp.url } } } });
    try {
      await echoed(mesh.proxy, { "user-agent": "test-agent/1" });
      expect((await viaProxy(mesh.proxy, "http://nowhere/x?y=1")).status).toBe(403); // neither a service nor egress
    } finally {
      await mesh.stop(); // flushes the log
      app.stop(true);
      await otlp.stop();
    }
    const lines = readFileSync(path, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    const [ok, bad] = lines;
    expect(ok).toMatchObject({ direction: "consumer", method: "GET", path: "/items", response_code: 200, response_flags: null, service: "promotion", upstream_cluster: "promotion", upstream_host: mesh.b.addresses.provider, attempts: 1, user_agent: "test-agent/1" });
    expect(ok.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(ok.request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(typeof ok.duration_ms).toBe("number");
    expect(new Date(ok.start_time).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(bad).toMatchObject({ path: "/x?y=1", response_code: 403, response_flags: "forbidden", upstream_host: null });
  });

  test("an Envoy-like format string", async () => {
    const dir = tempDir();
    const path = join(dir, "access.log");
    const app = startEchoApp();
    const format = '%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_HOST% "%REQ(X-REQUEST-ID)%" "%REQ(USER-AGENT):4%" %RESP(CONTENT-TYPE)% %DURATION%';
    const mesh = twoSidecars(app.port!, { a: { accessLog: { path, format } } });
    try {
      await echoed(mesh.proxy, { "x-request-id": "rid-1", "user-agent": "curlish" });
      await viaProxy(mesh.proxy, "http://nowhere/");
    } finally {
      await mesh.stop();
      app.stop(true);
    }
    const lines = readFileSync(path, "utf8").trim().split("\n");
    expect(lines[0]).toMatch(new RegExp(`^GET /items 200 - ${mesh.b.addresses.provider} "rid-1" "curl" application/json\\S* \\d+$`));
    expect(lines[1]).toMatch(/^GET \/ 403 forbidden - "[0-9a-f-]{36}" "Bun\/" application\/json\S* \d+$/);
  });

  test("bad tracing settings are config errors naming the path", () => {
    const problems = (tracing: unknown) => {
      try {
        resolveConfig({ service: { name: "a" }, tracing });
        return [];
      } catch (err) {
        return (err as ConfigError).problems.map((p) => p.path);
      }
    };
    expect(problems({ sampler: 2 })).toEqual(["tracing.sampler"]);
    expect(problems({ otlp: { endpoint: "not a url" } })).toEqual(["tracing.otlp.endpoint"]);
    expect(problems({ skywalking: { serverUri: "oap:11800", keepAlive: "soon" } })).toEqual(["tracing.skywalking.keepAlive"]);
    expect(problems({ sampler: 0.5, otlp: { endpoint: "127.0.0.1:4317" }, skywalking: {} })).toEqual([]);
    expect(problems({ otlp: { endpoint: "127.0.0.1:4318", protocol: "http/json" } })).toEqual(["tracing.otlp.protocol"]);
    // A path is an OTLP/HTTP thing; on a gRPC endpoint it would be silently ignored.
    expect(problems({ otlp: { endpoint: "http://127.0.0.1:4318/v1/traces" } })).toEqual(["tracing.otlp.endpoint"]);
    expect(problems({ otlp: { endpoint: "http://127.0.0.1:4318/v1/traces", protocol: "http/protobuf" } })).toEqual([]);
    expect(problems({ otlp: { endpoint: "127.0.0.1:4317", headers: { "x api key": "k", ok: "line\nbreak", "trace-bin": "x", "x-ok": "tab\tbad" } } })).toEqual([
      'tracing.otlp.headers["x api key"]',
      "tracing.otlp.headers.ok",
      'tracing.otlp.headers["trace-bin"]',
      'tracing.otlp.headers["x-ok"]',
    ]);
  });

  test("an unknown operator is a config error naming the path", () => {
    expect(() => resolveConfig({ service: { name: "a" }, accessLog: { format: "%NOPE%" } })).toThrow(ConfigError);
    try {
      resolveConfig({ service: { name: "a" }, accessLog: { format: "%NOPE%" } });
    } catch (err) {
      expect((err as ConfigError).problems[0]!.path).toBe("accessLog.format");
    }
  });
});

describe("reload and the command line", () => {
  test("a reload turns tracing on; x-envoy-decorator-operation names the span", async () => {
    const otlp = await startOtlpReceiver();
    const app = startEchoApp();
    const mesh = twoSidecars(app.port!);
    try {
      expect((await echoed(mesh.proxy))["traceparent"]).toBeUndefined();
      const config = mesh.a.runtime.pipeline.config;
      mesh.a.reload(resolveConfig({ ...config, listen: { ...config.listen }, tracing: { flushInterval: 50, otlp: { endpoint: otlp.url } } }));
      const got = await echoed(mesh.proxy, { "x-envoy-decorator-operation": "list items" });
      expect(got["traceparent"]).toMatch(/^00-/);
      await otlp.waitFor((s) => s.length === 1);
      expect(otlp.spans[0]!.name).toBe("list items");
      expect(otlp.spans[0]!.service).toBe("shop");
    } finally {
      await mesh.stop();
      app.stop(true);
      await otlp.stop();
    }
  });

  test("mesher run with accessLog: {} writes JSON lines to stdout", async () => {
    const app = startEchoApp();
    const d = tempDir({
      "mesher.config.json": JSON.stringify({
        service: { name: "shop" },
        listen: { consumer: "127.0.0.1:0", admin: "127.0.0.1:0" },
        services: { promotion: { endpoints: [`127.0.0.1:${app.port}`] } },
        accessLog: {},
      }),
    });
    const m = await spawnMesher(["-c", join(d, "mesher.config.json")]);
    try {
      expect((await viaProxy(`http://${m.consumer}`, "http://promotion/hello")).status).toBe(200);
      const match = await waitForLine(m.proc.stdout, /"path":"\/hello"/, m.lines);
      const line = JSON.parse(match.input);
      expect(line).toMatchObject({ method: "GET", path: "/hello", response_code: 200, upstream_host: `127.0.0.1:${app.port}`, service: "promotion" });
    } finally {
      m.proc.kill();
      await m.proc.exited;
      app.stop(true);
    }
  });
});
