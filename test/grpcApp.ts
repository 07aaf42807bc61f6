/** gRPC test apps and clients (grpc-js) on test/fixtures/echo.proto. */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { join } from "node:path";
import { ROOT } from "./helpers.ts";

const def = protoLoader.loadSync(join(ROOT, "test/fixtures/echo.proto"), { keepCase: false, longs: Number, defaults: true });
const pkg = grpc.loadPackageDefinition(def) as unknown as {
  mesher: { test: { Echo: grpc.ServiceClientConstructor } };
};
export const Echo = pkg.mesher.test.Echo;

export interface Req { text: string; count: number; delayMs: number; failCode: number; blob: Buffer }
export interface Reply { text: string; index: number; authority: string; caller: string; blobBytes: number; servedBy: string }

/** A grpc-js app implementing every call kind; records cancelled calls and counts unary ones. */
export async function startGrpcApp(name = "app") {
  const cancelled: string[] = [];
  const seen = { unary: 0 };
  const server = new grpc.Server({ "grpc.max_receive_message_length": 8 << 20 });
  const caller = (md: grpc.Metadata) => {
    const ctx = md.get("x-cse-context")[0];
    return ctx ? JSON.parse(String(ctx))["x-cse-src-microservice"] : "";
  };
  const reply = (r: Partial<Reply>): Reply => ({ text: "", index: 0, authority: "", caller: "", blobBytes: 0, servedBy: name, ...r });
  server.addService(Echo.service, {
    Unary(call: grpc.ServerUnaryCall<Req, Reply>, cb: grpc.sendUnaryData<Reply>) {
      seen.unary++;
      const r = call.request;
      call.on("cancelled", () => cancelled.push(r.text));
      const answer = () => {
        if (r.failCode) {
          const md = new grpc.Metadata();
          md.set("x-detail", "from-app");
          return cb({ code: r.failCode, details: `app says no to ${r.text}`, metadata: md });
        }
        cb(null, reply({ text: r.text, authority: call.getHost(), caller: caller(call.metadata), blobBytes: r.blob.length }));
      };
      if (r.delayMs) setTimeout(answer, r.delayMs);
      else answer();
    },
    ServerStream(call: grpc.ServerWritableStream<Req, Reply>) {
      for (let i = 0; i < call.request.count; i++) call.write(reply({ text: call.request.text, index: i }));
      call.end();
    },
    ClientStream(call: grpc.ServerReadableStream<Req, Reply>, cb: grpc.sendUnaryData<Reply>) {
      const texts: string[] = [];
      call.on("data", (r: Req) => texts.push(r.text));
      call.on("end", () => cb(null, reply({ text: texts.join(","), index: texts.length })));
    },
    Bidi(call: grpc.ServerDuplexStream<Req, Reply>) {
      let i = 0;
      call.on("cancelled", () => cancelled.push("bidi"));
      call.on("data", (r: Req) => call.write(reply({ text: r.text.toUpperCase(), index: i++ })));
      call.on("end", () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, cancelled, seen, stop: () => server.forceShutdown() };
}

export type GrpcApp = Awaited<ReturnType<typeof startGrpcApp>>;

/** A grpc-js client of the Echo service through a sidecar's gRPC listener, naming `service` as :authority. */
export function echoClient(listener: string, service: string): grpc.Client {
  return new Echo(listener, grpc.credentials.createInsecure(), { "grpc.default_authority": service, "grpc.max_receive_message_length": 8 << 20 });
}

/** One unary call; never rejects. */
export const unary = (client: grpc.Client, req: Partial<Req>, options: grpc.CallOptions = {}, metadata: Record<string, string> = {}) =>
  new Promise<{ reply?: Reply; err?: grpc.ServiceError }>((resolve) => {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    (client as unknown as Record<string, Function>).Unary!(req, md, options, (err: grpc.ServiceError | null, reply: Reply) =>
      resolve(err ? { err } : { reply }),
    );
  });

export { closedPort } from "./helpers.ts";
