/**
 * Reports segments to a SkyWalking OAP over gRPC (TraceSegmentReportService.collect, a client
 * stream, port 11800), from SkyWalking's own proto files (vendored in ./proto), and keeps the
 * service instance alive (ManagementService: properties once, then keepAlive). Segments are
 * buffered and sent every flushInterval; a collector that is down or slow costs dropped
 * segments, counted, never a request.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { hostname } from "node:os";
import { join } from "node:path";
import type { TracingOptions } from "../schema.ts";
import type { TraceIdentity } from "../tracing/tracer.ts";
import type { SegmentObject } from "./segment.ts";

const PROTO_DIR = join(import.meta.dir, "proto");
/** How long one collect stream or keep-alive may take before it is given up (and counted). */
const EXPORT_TIMEOUT_MS = 10_000;

type ClientCtor = new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client;
interface Services {
  Trace: ClientCtor;
  Management: ClientCtor;
  definition: grpc.GrpcObject;
}
let services: Services | undefined;

/** Loads the vendored protos (once per process). */
export function skywalkingServices(): Services {
  if (services) return services;
  const def = protoLoader.loadSync(["language-agent/Tracing.proto", "management/Management.proto"], {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: Number,
    enums: Number,
    defaults: true,
  });
  const definition = grpc.loadPackageDefinition(def);
  const v3 = (definition as unknown as { skywalking: { v3: Record<string, ClientCtor> } }).skywalking.v3;
  services = { Trace: v3.TraceSegmentReportService!, Management: v3.ManagementService!, definition };
  return services;
}

type Callback = (err: grpc.ServiceError | null) => void;
interface TraceClient extends grpc.Client {
  collect(options: grpc.CallOptions, cb: Callback): grpc.ClientWritableStream<SegmentObject>;
}
interface ManagementClient extends grpc.Client {
  reportInstanceProperties(msg: unknown, options: grpc.CallOptions, cb: Callback): void;
  keepAlive(msg: unknown, options: grpc.CallOptions, cb: Callback): void;
}

export class SkyWalkingReporter {
  readonly #trace: TraceClient;
  readonly #mgmt: ManagementClient;
  readonly #id: TraceIdentity;
  readonly #max: number;
  readonly #timeout: number;
  readonly #dropped: (n: number) => void;
  #buffer: SegmentObject[] = [];
  #sending: Promise<void> | undefined;
  #propertiesSent = false;
  readonly #timers: Timer[] = [];

  constructor(
    options: NonNullable<TracingOptions["skywalking"]>,
    identity: TraceIdentity,
    tracing: Pick<TracingOptions, "flushInterval" | "maxQueue">,
    dropped: (n: number) => void,
  ) {
    const { Trace, Management } = skywalkingServices();
    const address = options.serverUri.replace(/^https?:\/\//, "").replace(/\/$/, "");
    const creds = options.serverUri.startsWith("https://") ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
    this.#trace = new Trace(address, creds) as TraceClient;
    this.#mgmt = new Management(address, creds) as ManagementClient;
    this.#id = identity;
    this.#max = tracing.maxQueue;
    this.#timeout = EXPORT_TIMEOUT_MS;
    this.#dropped = dropped;
    const flush = setInterval(() => void this.flush(), tracing.flushInterval);
    const ping = setInterval(() => this.#keepAlive(), options.keepAlive);
    flush.unref();
    ping.unref();
    this.#timers.push(flush, ping);
    this.#keepAlive();
  }

  /** Buffers one segment (called once per sampled request; never waits). */
  add(segment: SegmentObject): void {
    if (this.#buffer.length >= this.#max) this.#dropped(1);
    else this.#buffer.push(segment);
  }

  /** Sends what is buffered now on one collect stream. Never rejects. */
  flush(): Promise<void> {
    if (this.#sending) return this.#sending.then(() => (this.#buffer.length ? this.flush() : undefined));
    if (this.#buffer.length === 0) return Promise.resolve();
    const batch = this.#buffer;
    this.#buffer = [];
    this.#sending = new Promise<void>((resolve) => {
      const deadline = new Date(Date.now() + this.#timeout);
      const stream = this.#trace.collect({ deadline }, (err) => {
        if (err) this.#dropped(batch.length);
        resolve();
      });
      stream.on("error", () => {}); // reported through the callback
      for (const s of batch) stream.write(s);
      stream.end();
    }).finally(() => (this.#sending = undefined));
    return this.#sending;
  }

  #keepAlive(): void {
    const deadline = new Date(Date.now() + this.#timeout);
    const who = { service: this.#id.service, serviceInstance: this.#id.instance, layer: "" };
    if (!this.#propertiesSent) {
      const properties = [
        { key: "language", value: "typescript" },
        { key: "runtime", value: `bun ${Bun.version}` },
        { key: "hostname", value: hostname() },
        { key: "Process No.", value: String(process.pid) },
        { key: "service.version", value: this.#id.version },
      ];
      this.#mgmt.reportInstanceProperties({ ...who, properties }, { deadline }, (err) => {
        if (!err) this.#propertiesSent = true;
      });
    }
    this.#mgmt.keepAlive(who, { deadline }, () => {});
  }

  async shutdown(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    await this.flush();
    this.#trace.close();
    this.#mgmt.close();
  }
}
