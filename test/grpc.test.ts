import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import http2 from "node:http2";
import type { Mesher } from "../src/server.ts";
import { closedPort, echoClient, startGrpcApp, unary, type GrpcApp, type Reply, type Req } from "./grpcApp.ts";
import { startSidecar } from "./helpers.ts";

describe("gRPC through two sidecars: client -> A (grpc) -> B (grpcProvider) -> app", () => {
  let app: GrpcApp;
  let a: Mesher, b: Mesher, c: Mesher;
  let client: grpc.Client;
  const clientFor = (authority: string) => echoClient(a.addresses.grpc!, authority);

  beforeAll(async () => {
    app = await startGrpcApp();
    b = startSidecar({ service: { name: "greeter", ports: { grpc: app.port } }, listen: { grpcProvider: "127.0.0.1:0" } });
    c = startSidecar({ service: { name: "noport" }, listen: { grpcProvider: "127.0.0.1:0" } });
    a = startSidecar({
      service: { name: "shop" },
      listen: { grpc: "127.0.0.1:0" },
      services: {
        greeter: { grpcEndpoints: [b.addresses.grpcProvider!] },
        noport: { grpcEndpoints: [c.addresses.grpcProvider!] },
        httponly: { endpoints: [`127.0.0.1:${closedPort()}`] },
        gone: { grpcEndpoints: [`127.0.0.1:${closedPort()}`] },
      },
    });
    client = clientFor("greeter");
  });
  afterAll(async () => {
    client.close();
    await Promise.all([a.stop(), b.stop(), c.stop()]);
    app.stop();
  });

  test("unary: the reply comes back, the app sees the caller and the authority", async () => {
    const { reply, err } = await unary(client, { text: "hi" });
    expect(err).toBeUndefined();
    expect(reply).toMatchObject({ text: "hi", authority: "greeter", caller: "shop" });
  });

  test("4 MB messages pass", async () => {
    const { reply, err } = await unary(client, { text: "big", blob: Buffer.alloc(4 << 20, 7) });
    expect(err).toBeUndefined();
    expect(reply!.blobBytes).toBe(4 << 20);
  });

  test("server streaming delivers every message in order", async () => {
    const call = (client as unknown as Record<string, Function>).ServerStream!({ text: "s", count: 50 }) as grpc.ClientReadableStream<Reply>;
    const got: number[] = [];
    await new Promise<void>((resolve, reject) => {
      call.on("data", (r: Reply) => got.push(r.index));
      call.on("end", resolve);
      call.on("error", reject);
    });
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  test("client streaming and bidi streaming", async () => {
    const sum = await new Promise<Reply>((resolve, reject) => {
      const call = (client as unknown as Record<string, Function>).ClientStream!((err: Error | null, r: Reply) => (err ? reject(err) : resolve(r))) as grpc.ClientWritableStream<Partial<Req>>;
      for (const t of ["a", "b", "c"]) call.write({ text: t });
      call.end();
    });
    expect(sum).toMatchObject({ text: "a,b,c", index: 3 });

    const bidi = (client as unknown as Record<string, Function>).Bidi!() as grpc.ClientDuplexStream<Partial<Req>, Reply>;
    const replies: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      bidi.on("data", (r: Reply) => {
        replies.push(r.text);
        if (replies.length < 3) bidi.write({ text: `m${replies.length}` }); // ping-pong: each reply triggers the next
        else bidi.end();
      });
      bidi.on("end", resolve);
      bidi.on("error", reject);
    });
    bidi.write({ text: "m0" });
    await done;
    expect(replies).toEqual(["M0", "M1", "M2"]);
  });

  test("a cancelled bidi stream is cancelled at the app", async () => {
    const bidi = (client as unknown as Record<string, Function>).Bidi!() as grpc.ClientDuplexStream<Partial<Req>, Reply>;
    const err = new Promise<grpc.ServiceError>((resolve) => bidi.on("error", resolve));
    await new Promise<void>((resolve) => {
      bidi.once("data", () => resolve());
      bidi.write({ text: "one" });
    });
    bidi.cancel();
    expect((await err).code).toBe(grpc.status.CANCELLED);
    for (let i = 0; i < 100 && !app.cancelled.includes("bidi"); i++) await Bun.sleep(20);
    expect(app.cancelled).toContain("bidi");
  });

  test("300 concurrent calls all succeed", async () => {
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => unary(client, { text: `c${i}` })));
    expect(results.filter((r) => r.err)).toHaveLength(0);
    expect(results.map((r) => r.reply!.text)).toEqual(Array.from({ length: 300 }, (_, i) => `c${i}`));
  });

  test("an error status from the app arrives intact, with its metadata", async () => {
    const { err } = await unary(client, { text: "x", failCode: grpc.status.PERMISSION_DENIED });
    expect(err!.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err!.details).toBe("app says no to x");
    expect(err!.metadata.get("x-detail")).toEqual(["from-app"]);
  });

  test("deadline exceeded: the caller gets DEADLINE_EXCEEDED and the app sees the call cancelled", async () => {
    const { err } = await unary(client, { text: "slow", delayMs: 3000 }, { deadline: Date.now() + 300 });
    expect(err!.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    for (let i = 0; i < 100 && !app.cancelled.includes("slow"); i++) await Bun.sleep(20);
    expect(app.cancelled).toContain("slow");
  });

  test("mesher enforces grpc-timeout itself: DEADLINE_EXCEEDED in trailers, the upstream stream cancelled", async () => {
    // The upstream is a raw HTTP/2 server that never answers, and the client a raw one that
    // does not enforce its own deadline: only mesher can end this call.
    const upstreamClosed = Promise.withResolvers<number>();
    const blackhole = http2.createServer();
    blackhole.on("stream", (stream) => {
      stream.on("error", () => {});
      stream.on("close", () => upstreamClosed.resolve(stream.rstCode ?? -1));
    });
    blackhole.listen(0, "127.0.0.1");
    const hole = startSidecar({
      service: { name: "caller" },
      listen: { grpc: "127.0.0.1:0" },
      services: { blackhole: { grpcEndpoints: [`127.0.0.1:${(blackhole.address() as { port: number }).port}`] } },
    });
    const session = http2.connect(`http://${hole.addresses.grpc}`);
    try {
      const req = session.request({
        ":method": "POST",
        ":path": "/mesher.test.Echo/Unary",
        ":authority": "blackhole",
        "content-type": "application/grpc",
        te: "trailers",
        "grpc-timeout": "200m",
      });
      req.end(Buffer.from([0, 0, 0, 0, 0]));
      const status = await new Promise<string>((resolve) => {
        req.on("response", (h) => h["grpc-status"] && resolve(String(h["grpc-status"])));
        req.on("trailers", (t) => resolve(String(t["grpc-status"])));
        req.resume();
      });
      expect(status).toBe(String(grpc.status.DEADLINE_EXCEEDED));
      expect(await upstreamClosed.promise).toBe(http2.constants.NGHTTP2_CANCEL);
    } finally {
      session.close();
      await hole.stop();
      blackhole.close();
    }
  });

  test("gRPC calls are counted in the metrics, by gRPC status mapped to HTTP", async () => {
    await unary(client, { text: "m" });
    const unknown = clientFor("counted-unknown");
    await unary(unknown, { text: "x" });
    unknown.close();
    const text = await (await fetch(`http://${a.addresses.admin}/v1/mesher/metrics`)).text();
    const value = (name: string, service: string) =>
      Number(new RegExp(`^${name}\\{[^}]*service_name="${service}"[^}]*\\} (\\d+)`, "m").exec(text)?.[1] ?? 0);
    expect(value("successes_total", "greeter")).toBeGreaterThan(0);
    expect(value("failures_total", "counted-unknown")).toBe(1);
    expect(value("status_5xx", "counted-unknown")).toBe(1); // UNIMPLEMENTED counts as 501
  });

  test("an unknown service is UNIMPLEMENTED; no gRPC endpoint or a dead one is UNAVAILABLE", async () => {
    const unknown = clientFor("nosuch");
    const httponly = clientFor("httponly");
    const gone = clientFor("gone");
    const noport = clientFor("noport");
    try {
      const n = await unary(noport, { text: "x" });
      expect(n.err!.code).toBe(grpc.status.UNAVAILABLE);
      expect(n.err!.details).toContain("service.ports.grpc");
      const u = await unary(unknown, { text: "x" });
      expect(u.err!.code).toBe(grpc.status.UNIMPLEMENTED);
      expect(u.err!.details).toContain('no service named "nosuch"');
      expect(u.err!.metadata.get("x-mesher-error")).toEqual(["unknown_service"]);
      const h = await unary(httponly, { text: "x" });
      expect(h.err!.code).toBe(grpc.status.UNAVAILABLE);
      expect(h.err!.details).toContain("grpcEndpoints");
      const g = await unary(gone, { text: "x" });
      expect(g.err!.code).toBe(grpc.status.UNAVAILABLE);
      expect(g.err!.metadata.get("x-mesher-error")[0]).toMatch(/upstream_/);
    } finally {
      unknown.close();
      httponly.close();
      gone.close();
      noport.close();
    }
  });
});
