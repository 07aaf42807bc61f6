/**
 * A real SkyWalking OAP stand-in: a grpc-js server on SkyWalking's own proto files (the ones
 * vendored for the reporter), implementing TraceSegmentReportService and ManagementService.
 */
import * as grpc from "@grpc/grpc-js";
import { skywalkingServices } from "../../src/telemetry/skywalking/client.ts";
import type { SegmentObject } from "../../src/telemetry/skywalking/segment.ts";

export interface SkyWalkingReceiver {
  readonly address: string;
  readonly segments: SegmentObject[];
  readonly properties: { service: string; serviceInstance: string; properties: { key: string; value: string }[] }[];
  readonly pings: { service: string; serviceInstance: string }[];
  waitFor(pred: (r: SkyWalkingReceiver) => boolean, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startSkyWalkingReceiver(): Promise<SkyWalkingReceiver> {
  const { Trace, Management } = skywalkingServices();
  const server = new grpc.Server();
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  const r: SkyWalkingReceiver = {
    address: "",
    segments: [],
    properties: [],
    pings: [],
    waitFor(pred, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!pred(r)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`SkyWalking receiver: condition not met in ${timeoutMs} ms; segments:\n${JSON.stringify(r.segments, null, 1).slice(0, 3000)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
  const service = (ctor: unknown) => (ctor as grpc.ServiceClientConstructor).service;
  server.addService(service(Trace), {
    collect(call: grpc.ServerReadableStream<SegmentObject, unknown>, callback: grpc.sendUnaryData<unknown>) {
      call.on("data", (s: SegmentObject) => {
        r.segments.push(s);
        notify();
      });
      call.on("end", () => callback(null, { commands: [] }));
      call.on("error", () => {});
    },
    collectInSync(call: grpc.ServerUnaryCall<{ segments: SegmentObject[] }, unknown>, callback: grpc.sendUnaryData<unknown>) {
      r.segments.push(...call.request.segments);
      notify();
      callback(null, { commands: [] });
    },
  });
  server.addService(service(Management), {
    reportInstanceProperties(call: grpc.ServerUnaryCall<SkyWalkingReceiver["properties"][number], unknown>, callback: grpc.sendUnaryData<unknown>) {
      r.properties.push(call.request);
      notify();
      callback(null, { commands: [] });
    },
    keepAlive(call: grpc.ServerUnaryCall<SkyWalkingReceiver["pings"][number], unknown>, callback: grpc.sendUnaryData<unknown>) {
      r.pings.push(call.request);
      notify();
      callback(null, { commands: [] });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  Object.assign(r, { address: `127.0.0.1:${port}` });
  return r;
}
