/**
 * Reports segments to a SkyWalking OAP over gRPC (TraceSegmentReportService.collect, a client
 * stream, port 11800), from SkyWalking's own proto files (vendored in ./proto), and keeps the
 * service instance alive (ManagementService: properties once, then keepAlive). Segments are
 * buffered and sent every flushInterval; a collector that is down or slow costs dropped
 * segments, counted, never a request. The gRPC clients (./client.ts) load in the background:
 * segments recorded meanwhile wait in the buffer like any others.
 */
import { hostname } from "node:os";
import type { TracingOptions } from "../schema.ts";
import type { TraceIdentity } from "../tracing/tracer.ts";
import type { ManagementClient, TraceClient } from "./client.ts";
import type { SegmentObject } from "./segment.ts";

/** How long one collect stream or keep-alive may take before it is given up (and counted). */
const EXPORT_TIMEOUT_MS = 10_000;

interface Clients {
  trace: TraceClient;
  mgmt: ManagementClient;
}

export class SkyWalkingReporter {
  /** Undefined when ./client.ts failed to load (then every batch is dropped and counted). */
  readonly #clients: Promise<Clients | undefined>;
  readonly #id: TraceIdentity;
  readonly #max: number;
  readonly #timeout: number;
  readonly #dropped: (n: number) => void;
  #buffer: SegmentObject[] = [];
  #sending: Promise<void> | undefined;
  /** The instance properties: sent once (a keep-alive while they are on their way waits). */
  #properties: "unsent" | "sending" | "sent" = "unsent";
  readonly #timers: Timer[] = [];

  constructor(
    options: NonNullable<TracingOptions["skywalking"]>,
    identity: TraceIdentity,
    tracing: Pick<TracingOptions, "flushInterval" | "maxQueue">,
    dropped: (n: number) => void,
  ) {
    this.#clients = import("./client.ts").then(
      (m) => m.skywalkingClients(options.serverUri),
      (err: unknown) => {
        console.error("mesher: the SkyWalking reporter failed to load (segments are dropped and counted):", err);
        return undefined;
      },
    );
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
    this.#sending = this.#clients.then((clients) => this.#send(clients, batch)).finally(() => (this.#sending = undefined));
    return this.#sending;
  }

  #send(clients: Clients | undefined, batch: SegmentObject[]): Promise<void> {
    if (!clients) {
      this.#dropped(batch.length);
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const deadline = new Date(Date.now() + this.#timeout);
      const stream = clients.trace.collect({ deadline }, (err) => {
        if (err) this.#dropped(batch.length);
        resolve();
      });
      stream.on("error", () => {}); // reported through the callback
      for (const s of batch) stream.write(s);
      stream.end();
    });
  }

  #keepAlive(): void {
    void this.#clients.then((clients) => clients && this.#ping(clients.mgmt));
  }

  #ping(mgmt: ManagementClient): void {
    const deadline = new Date(Date.now() + this.#timeout);
    const who = { service: this.#id.service, serviceInstance: this.#id.instance, layer: "" };
    if (this.#properties === "unsent") {
      this.#properties = "sending";
      const properties = [
        { key: "language", value: "typescript" },
        { key: "runtime", value: `bun ${Bun.version}` },
        { key: "hostname", value: hostname() },
        { key: "Process No.", value: String(process.pid) },
        { key: "service.version", value: this.#id.version },
      ];
      mgmt.reportInstanceProperties({ ...who, properties }, { deadline }, (err) => {
        this.#properties = err ? "unsent" : "sent";
      });
    }
    mgmt.keepAlive(who, { deadline }, () => {});
  }

  async shutdown(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    await this.flush();
    const clients = await this.#clients;
    clients?.trace.close();
    clients?.mgmt.close();
  }
}
