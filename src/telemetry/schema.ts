/**
 * Config of the telemetry a sidecar produces: `tracing` and `accessLog`. Plugged into the
 * main schema (src/config/schema.ts) as two optional keys; metrics and the stats page need no
 * config (they are always on the admin port).
 */
import * as v from "valibot";
import { Duration } from "../config/duration.ts";
import { compileFormat } from "./accessLog.ts";

const d = v.description;

/** A collector's address: "http://host:port", "https://host:port" or "host:port" (taken as plaintext http). */
const COLLECTOR = String.raw`(?:https?:\/\/)?[A-Za-z0-9.\-[\]:]+:\d{1,5}`;
const COLLECTOR_EXPECTED = 'a collector address "host:port" or "http://host:port"';

/** A collector for gRPC: no path. */
const GrpcEndpoint = v.pipe(v.string(), v.regex(new RegExp(`^${COLLECTOR}\\/?$`), COLLECTOR_EXPECTED));

/** A collector for OTLP, which over HTTP may name the path (default /v1/traces). */
const OtlpEndpoint = v.pipe(v.string(), v.regex(new RegExp(`^${COLLECTOR}(?:\\/[^\\s?#]*)?$`), COLLECTOR_EXPECTED));

/** OTLP transports, named as OpenTelemetry's OTEL_EXPORTER_OTLP_PROTOCOL names them. */
const OTLP_PROTOCOLS = ["grpc", "http/protobuf"] as const;

const OtlpSchema = v.pipe(
  v.strictObject({
    endpoint: v.pipe(
      OtlpEndpoint,
      d('collector: "http://127.0.0.1:4317" for gRPC; "http://127.0.0.1:4318" for http/protobuf, which posts to /v1/traces unless the URL names a path'),
    ),
    protocol: v.optional(
      v.pipe(
        v.picklist(OTLP_PROTOCOLS),
        d('"grpc" (default, @opentelemetry/exporter-trace-otlp-grpc, on an exporter thread) or "http/protobuf" (OTLP over HTTP/1.1 with Bun\'s fetch, from the main thread: no gRPC stack, no exporter thread, ~20 MB less memory)'),
      ),
      "grpc",
    ),
    timeout: v.optional(v.pipe(Duration, d("give up one export after this (spans are dropped and counted)")), "10s"),
    headers: v.optional(
      v.pipe(
        v.record(
          // What both carry: gRPC metadata keys are [0-9a-z_.-] (after lower-casing), values printable ASCII.
          v.pipe(
            v.string(),
            v.regex(/^[A-Za-z0-9_.-]+$/, 'a header name of letters, digits, "-", "_" and "."'),
            v.check((k) => !k.toLowerCase().endsWith("-bin"), 'a text header (binary "-bin" metadata is not supported)'),
          ),
          v.pipe(v.string(), v.regex(/^[\x20-\x7e]*$/, "a header value of printable ASCII characters")),
        ),
        d('sent with every export, as HTTP headers or gRPC metadata (names in lower case), e.g. { "x-api-key": "..." } for a hosted collector; OTEL_EXPORTER_OTLP_HEADERS adds to them'),
      ),
    ),
  }),
  v.forward(
    v.check((o) => o.protocol !== "grpc" || !/:\d{1,5}\/./.test(o.endpoint), 'a gRPC collector address without a path ("host:port" or "http://host:port"); a path is for protocol "http/protobuf"'),
    ["endpoint"],
  ),
  d("export spans over OTLP (gRPC or HTTP)"),
);

export const TracingSchema = v.strictObject({
  sampler: v.optional(
    v.pipe(
      v.number(),
      v.minValue(0),
      v.maxValue(1),
      d("share of new traces to sample, 0..1; a request that carries a sampling decision keeps it (parent-based)"),
    ),
    1,
  ),
  otlp: v.optional(OtlpSchema),
  skywalking: v.optional(
    v.pipe(
      v.strictObject({
        serverUri: v.optional(v.pipe(GrpcEndpoint, d("SkyWalking OAP gRPC address")), "127.0.0.1:11800"),
        keepAlive: v.optional(v.pipe(Duration, d("how often the instance keep-alive is sent")), "30s"),
      }),
      d("report segments to a SkyWalking OAP (TraceSegmentReportService)"),
    ),
  ),
  flushInterval: v.optional(
    v.pipe(Duration, d("how often buffered spans and segments are sent")),
    "1s",
  ),
  maxQueue: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(1), d("spans (and segments) buffered per exporter; beyond it they are dropped and counted")),
    4096,
  ),
});

export const AccessLogSchema = v.strictObject({
  enabled: v.optional(v.pipe(v.boolean(), d("write one line per request")), true),
  format: v.optional(
    v.pipe(
      v.string(),
      v.minLength(1),
      v.check((f) => {
        try {
          return Boolean(compileFormat(f));
        } catch {
          return false;
        }
      }, '"json", "envoy", or a format string of known operators (%START_TIME% %REQ(X)% %RESP(X)% %PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %UPSTREAM_HOST% %UPSTREAM_CLUSTER% %ROUTE_NAME% %DOWNSTREAM_REMOTE_ADDRESS% %UPSTREAM_REQUEST_ATTEMPT_COUNT% %TRACE_ID% %DIRECTION% %SERVICE%)'),
      d('"json" (default), "envoy" (Envoy\'s default format), or an Envoy-like format string such as "[%START_TIME%] %REQ(:METHOD)% %RESPONSE_CODE% %RESPONSE_FLAGS%"'),
    ),
    "json",
  ),
  path: v.optional(v.pipe(v.string(), v.minLength(1), d('file to append to, or "-" / omitted for stdout')), "-"),
});

export type TracingOptions = v.InferOutput<typeof TracingSchema>;
export type AccessLogOptions = v.InferOutput<typeof AccessLogSchema>;

export const tracingKey = v.optional(v.pipe(TracingSchema, d("distributed tracing (off when absent)")));
export const accessLogKey = v.optional(v.pipe(AccessLogSchema, d("access log, one line per request (off when absent)")));
