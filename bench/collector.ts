/**
 * The benchmark's trace collector: a grpc-js server for OTLP/gRPC's TraceService (the
 * published opentelemetry-proto definitions the tests' receiver loads, test/receivers/otlp.ts)
 * and an OTLP/HTTP one (`POST /v1/traces`, the same protobuf request), in its own process, so
 * the meshers export the 1% of requests they sample to something real. Prints
 * "collector host:port http=host:port" (gRPC, then HTTP); writes the number of spans received
 * so far, by either, to the file SPANS_FILE each second.
 *
 * Unlike the tests' receiver it does not turn each span into an object: it counts the spans
 * of a request on its encoded bytes (protobufjs' Reader skips them). A collector stands for a
 * service on another machine; here it shares the two cores with wrk, the app and the mesher,
 * and the tests' full decoding took 3-4% of a core at 700 spans/s, taken from the mesher's row
 * only (bench/NOTES.md).
 */
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs/minimal.js";
import { writeFileSync } from "node:fs";
import { traceServiceDefinition } from "../test/receivers/otlp.ts";

/**
 * Spans in an encoded ExportTraceServiceRequest: resource_spans (field 1) > scope_spans
 * (field 2) > spans (field 2), every other field skipped.
 */
export function countSpans(buf: Uint8Array): number {
  const r = protobuf.Reader.create(buf);
  const walk = (end: number, depth: number): number => {
    let n = 0;
    while (r.pos < end) {
      const tag = r.uint32();
      if ((tag & 7) === 2 && tag >>> 3 === (depth === 0 ? 1 : 2)) {
        const len = r.uint32();
        if (depth === 2) {
          n++;
          r.skip(len);
        } else n += walk(r.pos + len, depth + 1);
      } else r.skipType(tag & 7);
    }
    return n;
  };
  return walk(buf.length, 0);
}

/** An empty ExportTraceServiceResponse (every field absent). */
const EMPTY = new Uint8Array(0);

if (import.meta.main) {
  const service = traceServiceDefinition();
  let total = 0;
  const server = new grpc.Server();
  // The request arrives as its span count (the deserializer counts), the response is empty.
  server.addService({ Export: { ...service.Export!, requestDeserialize: countSpans } }, {
    Export(call: grpc.ServerUnaryCall<number, unknown>, callback: grpc.sendUnaryData<unknown>) {
      total += call.request;
      callback(null, {});
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const http = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      if (req.method !== "POST" || new URL(req.url).pathname !== "/v1/traces") return new Response("not found", { status: 404 });
      total += countSpans(new Uint8Array(await req.arrayBuffer()));
      return new Response(EMPTY, { headers: { "content-type": "application/x-protobuf" } });
    },
  });
  setInterval(() => {
    if (process.env.SPANS_FILE) writeFileSync(process.env.SPANS_FILE, String(total));
  }, 1000);
  console.log(`collector 127.0.0.1:${port} http=127.0.0.1:${http.port}`);
}
