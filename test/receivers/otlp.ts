/**
 * A real OTLP trace receiver, on the published opentelemetry-proto definitions (vendored in
 * ./proto), collecting what exporters send: over gRPC (a grpc-js server, as a collector's port
 * 4317) or over HTTP (`POST /v1/traces` with a protobuf body, as a collector's port 4318,
 * answering as the OTLP/HTTP spec says). Used by the tests and by the tsf-demo recipe when no
 * collector is given.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { join } from "node:path";

export type AttrValue = string | number | boolean | null;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** "" for a root span. */
  parentSpanId: string;
  name: string;
  /** SPAN_KIND_SERVER, SPAN_KIND_CLIENT, ... */
  kind: string;
  /** The resource's service.name. */
  service: string;
  resource: Record<string, AttrValue>;
  attributes: Record<string, AttrValue>;
  traceState: string;
  /** STATUS_CODE_UNSET / _OK / _ERROR */
  status: string;
  startNanos: bigint;
  endNanos: bigint;
}

export interface OtlpReceiver {
  /** "127.0.0.1:port" */
  readonly address: string;
  readonly url: string;
  readonly spans: ReceivedSpan[];
  /** Export calls received. */
  calls: number;
  /** The last export's HTTP headers or gRPC metadata (lower-case names). */
  headers: Record<string, string>;
  /** Resolves once `pred` holds for the collected spans; rejects after `timeoutMs`. */
  waitFor(pred: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  stop(): Promise<void>;
}

interface AnyValue {
  value?: string;
  string_value?: string;
  bool_value?: boolean;
  int_value?: string | number;
  double_value?: number;
}
interface KeyValue {
  key: string;
  value?: AnyValue;
}

function attrs(list: KeyValue[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of list ?? []) {
    const v = kv.value;
    const which = v?.value as keyof AnyValue | undefined;
    const raw = which ? v![which] : null;
    out[kv.key] = which === "int_value" ? Number(raw) : ((raw as AttrValue) ?? null);
  }
  return out;
}

const hex = (b: Buffer | undefined) => (b && b.length ? b.toString("hex") : "");

let definition: grpc.GrpcObject | undefined;
function load(): grpc.GrpcObject {
  definition ??= grpc.loadPackageDefinition(
    protoLoader.loadSync("opentelemetry/proto/collector/trace/v1/trace_service.proto", {
      includeDirs: [join(import.meta.dir, "proto")],
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    }),
  );
  return definition;
}

/** OTLP's TraceService, as grpc-js serves it. */
export function traceServiceDefinition(): grpc.ServiceDefinition {
  const pkg = load() as unknown as {
    opentelemetry: { proto: { collector: { trace: { v1: { TraceService: grpc.ServiceClientConstructor } } } } };
  };
  return pkg.opentelemetry.proto.collector.trace.v1.TraceService.service;
}

type ExportRequest = {
  resource_spans: {
    resource?: { attributes: KeyValue[] };
    scope_spans: { spans: Record<string, unknown>[] }[];
  }[];
};

export interface OtlpReceiverOptions {
  port?: number;
  /** "grpc" (default) or "http/protobuf". */
  protocol?: "grpc" | "http/protobuf";
}

export async function startOtlpReceiver(portOrOptions: number | OtlpReceiverOptions = 0): Promise<OtlpReceiver> {
  const { port = 0, protocol = "grpc" } = typeof portOrOptions === "number" ? { port: portOrOptions } : portOrOptions;
  const service = traceServiceDefinition();
  const spans: ReceivedSpan[] = [];
  const waiters = new Set<() => void>();
  let stop: () => Promise<void>;
  const receiver: OtlpReceiver = {
    address: "",
    url: "",
    spans,
    calls: 0,
    headers: {},
    waitFor(pred, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!pred(spans)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(spans);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`OTLP receiver: condition not met in ${timeoutMs} ms; have ${spans.length} spans:\n${spans.map((s) => `${s.service} ${s.kind} ${s.name} ${s.traceId}/${s.spanId}<-${s.parentSpanId}`).join("\n")}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    stop: () => stop(),
  };
  const collect = (request: ExportRequest) => {
    receiver.calls++;
    for (const rs of request.resource_spans) {
      const resource = attrs(rs.resource?.attributes);
      for (const ss of rs.scope_spans) {
        for (const s of ss.spans) {
          spans.push({
            traceId: hex(s.trace_id as Buffer),
            spanId: hex(s.span_id as Buffer),
            parentSpanId: hex(s.parent_span_id as Buffer),
            name: s.name as string,
            traceState: (s.trace_state as string) ?? "",
            kind: s.kind as string,
            service: String(resource["service.name"] ?? ""),
            resource,
            attributes: attrs(s.attributes as KeyValue[]),
            status: ((s.status as { code?: string } | undefined)?.code ?? "STATUS_CODE_UNSET") as string,
            startNanos: BigInt(s.start_time_unix_nano as string),
            endNanos: BigInt(s.end_time_unix_nano as string),
          });
        }
      }
    }
    for (const w of [...waiters]) w();
  };
  if (protocol === "http/protobuf") {
    const { Export } = service;
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port,
      async fetch(req) {
        if (new URL(req.url).pathname !== "/v1/traces") return new Response("not found", { status: 404 });
        if (req.method !== "POST") return new Response("method not allowed", { status: 405 });
        if (!/^application\/x-protobuf\b/.test(req.headers.get("content-type") ?? "")) return new Response("unsupported media type", { status: 415 });
        let body = new Uint8Array(await req.arrayBuffer());
        if (req.headers.get("content-encoding") === "gzip") body = Bun.gunzipSync(body);
        receiver.headers = Object.fromEntries(req.headers);
        collect(Export!.requestDeserialize(Buffer.from(body)) as ExportRequest);
        return new Response(new Uint8Array(Export!.responseSerialize({})), { headers: { "content-type": "application/x-protobuf" } });
      },
    });
    stop = () => server.stop(true);
    Object.assign(receiver, { address: `127.0.0.1:${server.port}`, url: `http://127.0.0.1:${server.port}` });
    return receiver;
  }
  const server = new grpc.Server();
  stop = () => new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  server.addService(service, {
    Export(call: grpc.ServerUnaryCall<ExportRequest, unknown>, callback: grpc.sendUnaryData<unknown>) {
      receiver.headers = Object.fromEntries(Object.entries(call.metadata.getMap()).map(([k, v]) => [k, String(v)]));
      collect(call.request);
      callback(null, {});
    },
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  Object.assign(receiver, { address: `127.0.0.1:${bound}`, url: `http://127.0.0.1:${bound}` });
  return receiver;
}
