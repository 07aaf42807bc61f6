/**
 * The gRPC side of the SkyWalking reporter: SkyWalking's own proto files (vendored in ./proto)
 * loaded with grpc-js. A module of its own because grpc-js and protobufjs cost ~24 MB of RSS:
 * the reporter imports it in the background, only when `tracing.skywalking` is configured.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { join } from "node:path";
import type { SegmentObject } from "./segment.ts";

const PROTO_DIR = join(import.meta.dir, "proto");

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

export type Callback = (err: grpc.ServiceError | null) => void;
export interface TraceClient extends grpc.Client {
  collect(options: grpc.CallOptions, cb: Callback): grpc.ClientWritableStream<SegmentObject>;
}
export interface ManagementClient extends grpc.Client {
  reportInstanceProperties(msg: unknown, options: grpc.CallOptions, cb: Callback): void;
  keepAlive(msg: unknown, options: grpc.CallOptions, cb: Callback): void;
}

/** The two clients of one OAP: "host:port" or "http(s)://host:port". */
export function skywalkingClients(serverUri: string): { trace: TraceClient; mgmt: ManagementClient } {
  const { Trace, Management } = skywalkingServices();
  const address = serverUri.replace(/^https?:\/\//, "").replace(/\/$/, "");
  const creds = serverUri.startsWith("https://") ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
  return { trace: new Trace(address, creds) as TraceClient, mgmt: new Management(address, creds) as ManagementClient };
}
