/**
 * gRPC calls run the handler chains: route rules on metadata and method paths, balancing,
 * rate limits on both sides, the breaker, outlier detection and timeouts, with mesher's own
 * errors as grpc-status trailers.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import http2 from "node:http2";
import type { Mesher } from "../src/server.ts";
import { closedPort, echoClient, startGrpcApp, unary, type GrpcApp, type Reply, type Req } from "./grpcApp.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import { startSidecar } from "./helpers.ts";
import { startOtlpReceiver } from "./receivers/otlp.ts";

/** One EchoReply { text, served_by } as a gRPC length-prefixed message (hand-encoded protobuf). */
function framedReply(text: string, servedBy: string): Uint8Array<ArrayBuffer> {
  const field = (tag: number, value: string) => {
    const bytes = Buffer.from(value);
    return Buffer.concat([Buffer.from([tag, bytes.length]), bytes]);
  };
  const msg = Buffer.concat([field(0x0a, text), field(0x32, servedBy)]);
  const frame = Buffer.alloc(5 + msg.length);
  frame.writeUInt32BE(msg.length, 1);
  msg.copy(frame, 5);
  return new Uint8Array(frame);
}

describe("gRPC through the handler chains: client -> A (grpc) -> B1/B2 (grpcProvider) -> v1/v2 apps", () => {
  let v1: GrpcApp, v2: GrpcApp;
  let b1: Mesher, b2: Mesher, guarded: Mesher, a: Mesher;
  const clients: grpc.Client[] = [];
  const clientFor = (service: string) => {
    const c = echoClient(a.addresses.grpc!, service);
    clients.push(c);
    return c;
  };
  const servedBy = async (client: grpc.Client, n: number, metadata: Record<string, string> = {}) => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const { reply, err } = await unary(client, { text: `${i}` }, {}, metadata);
      if (err) throw err;
      out.push(reply!.servedBy);
    }
    return out;
  };

  beforeAll(async () => {
    [v1, v2] = await Promise.all([startGrpcApp("v1"), startGrpcApp("v2")]);
    b1 = startSidecar({ service: { name: "greeter", version: "1", ports: { grpc: v1.port } }, listen: { grpcProvider: "127.0.0.1:0" } });
    b2 = startSidecar({ service: { name: "greeter", version: "2", ports: { grpc: v2.port } }, listen: { grpcProvider: "127.0.0.1:0" } });
    guarded = startSidecar({
      service: { name: "guarded", ports: { grpc: v1.port } },
      listen: { grpcProvider: "127.0.0.1:0" },
      rateLimit: { provider: { rate: 0.001, burst: 1 } },
    });
    const both = [
      { address: b1.addresses.grpcProvider!, tags: { version: "v1" } },
      { address: b2.addresses.grpcProvider!, tags: { version: "v2" } },
    ];
    a = startSidecar({
      service: { name: "shop" },
      listen: { grpc: "127.0.0.1:0" },
      services: {
        greeter: {
          grpcEndpoints: both,
          routes: [
            { precedence: 3, match: { headers: { "x-canary": { exact: "yes" } } }, route: [{ tags: { version: "v2" } }] },
            { precedence: 2, match: { path: { prefix: "/mesher.test.Echo/Server" } }, route: [{ tags: { version: "v2" } }] },
            { precedence: 1, route: [{ tags: { version: "v1" } }] },
          ],
        },
        balanced: { grpcEndpoints: both },
        // Weights under 100: the rest goes to the newest version of the gRPC endpoints (v2).
        newest: { grpcEndpoints: both, routes: [{ route: [{ tags: { version: "v1" }, weight: 50 }] }] },
        hashed: { grpcEndpoints: both, loadBalancer: { kind: "consistentHash", header: "x-user" } },
        weighted: { grpcEndpoints: both, routes: [{ route: [{ tags: { version: "v1" }, weight: 75 }, { tags: { version: "v2" }, weight: 25 }] }] },
        limited: { grpcEndpoints: [b1.addresses.grpcProvider!], rateLimit: { rate: 0.001, burst: 2 } },
        dead: {
          grpcEndpoints: [`127.0.0.1:${closedPort()}`],
          circuitBreaker: { requestVolumeThreshold: 3, errorThresholdPercentage: 50, sleepWindow: "1m" },
        },
        flaky: {
          grpcEndpoints: [b1.addresses.grpcProvider!],
          circuitBreaker: { requestVolumeThreshold: 3, errorThresholdPercentage: 50, sleepWindow: "1m" },
        },
        cached: {
          grpcEndpoints: [`127.0.0.1:${closedPort()}`],
          circuitBreaker: {
            requestVolumeThreshold: 1,
            errorThresholdPercentage: 50,
            sleepWindow: "1m",
            // A fallback may answer in gRPC terms: its grpc-status header becomes the call's status.
            fallback: () => new Response(null, { headers: { "grpc-status": String(grpc.status.NOT_FOUND), "grpc-message": "served%20from%20fallback" } }),
          },
        },
        canned: {
          grpcEndpoints: [`127.0.0.1:${closedPort()}`],
          circuitBreaker: {
            requestVolumeThreshold: 1,
            errorThresholdPercentage: 50,
            sleepWindow: "1m",
            // ... or with a reply: a body of gRPC-framed messages, then grpc-status 0.
            fallback: () => new Response(framedReply("canned", "fallback"), { headers: { "content-type": "application/grpc" } }),
          },
        },
        halfdead: {
          grpcEndpoints: [`127.0.0.1:${closedPort()}`, b2.addresses.grpcProvider!],
          outlierDetection: { consecutiveGatewayErrors: 1, baseEjectionTime: "1m" },
          retry: { attempts: 3, nonIdempotent: true }, // not applied to gRPC calls
        },
        slow: { grpcEndpoints: [b1.addresses.grpcProvider!], timeout: 200 },
        guarded: { grpcEndpoints: [guarded.addresses.grpcProvider!] },
      },
    });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all([a.stop(), b1.stop(), b2.stop(), guarded.stop()]);
    v1.stop();
    v2.stop();
  });

  test("a route rule on a metadata header sends the call to v2; other calls follow the default rule to v1", async () => {
    const client = clientFor("greeter");
    expect(await servedBy(client, 4, { "x-canary": "yes" })).toEqual(["v2", "v2", "v2", "v2"]);
    expect(await servedBy(client, 4)).toEqual(["v1", "v1", "v1", "v1"]);
    expect(await servedBy(client, 2, { "x-canary": "no" })).toEqual(["v1", "v1"]);
  });

  test("a route rule on the method path (/pkg.Service/Method) matches streaming calls", async () => {
    const client = clientFor("greeter");
    const call = (client as unknown as Record<string, Function>).ServerStream!({ text: "s", count: 3 }) as grpc.ClientReadableStream<Reply>;
    const by: string[] = [];
    await new Promise<void>((resolve, reject) => {
      call.on("data", (r: Reply) => by.push(r.servedBy));
      call.on("end", resolve);
      call.on("error", reject);
    });
    expect(by).toEqual(["v2", "v2", "v2"]);
  });

  test("without rules calls alternate over the two apps (round-robin); weights by tags split 75/25, the rest of weights under 100 goes to the latest version", async () => {
    const rr = await servedBy(clientFor("balanced"), 10);
    expect(rr.filter((s) => s === "v1")).toHaveLength(5);
    expect(rr.filter((s) => s === "v2")).toHaveLength(5);
    expect(rr.slice(0, 2).sort()).toEqual(["v1", "v2"]);
    const weighted = await servedBy(clientFor("weighted"), 8);
    expect(weighted.filter((s) => s === "v1")).toHaveLength(6);
    expect(weighted.filter((s) => s === "v2")).toHaveLength(2);
    expect((await servedBy(clientFor("newest"), 4)).sort()).toEqual(["v1", "v1", "v2", "v2"]);
  });

  test("the service's loadBalancer applies: consistent hashing on a metadata value keeps a user on one app", async () => {
    const client = clientFor("hashed");
    for (const user of ["alice", "bob", "carol"]) {
      const by = await servedBy(client, 6, { "x-user": user });
      expect(new Set(by).size).toBe(1);
    }
  });

  test("over the consumer rate limit a call gets RESOURCE_EXHAUSTED, in trailers", async () => {
    const client = clientFor("limited");
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await unary(client, { text: "x" }));
    expect(results.slice(0, 2).map((r) => r.err)).toEqual([undefined, undefined]);
    const { err } = results[2]!;
    expect(err!.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err!.details).toContain("too many requests to limited");
    expect(err!.metadata.get("x-mesher-error")).toEqual(["rate_limited"]);
  });

  test("mesher's errors are trailers-only gRPC responses: HTTP 200, application/grpc, grpc-status, no body", async () => {
    const session = http2.connect(`http://${a.addresses.grpc}`);
    try {
      const req = session.request({
        ":method": "POST",
        ":path": "/mesher.test.Echo/Unary",
        ":authority": "limited", // its bucket is empty by now
        "content-type": "application/grpc",
        te: "trailers",
      });
      req.end(Buffer.from([0, 0, 0, 0, 0]));
      let bytes = 0;
      req.on("data", (d: Buffer) => (bytes += d.length));
      const [headers, flags] = await new Promise<[http2.IncomingHttpHeaders, number]>((resolve) => req.on("response", (h, f) => resolve([h, f])));
      await new Promise((resolve) => req.on("close", resolve));
      expect(Number(headers[":status"])).toBe(200);
      expect(headers["content-type"]).toBe("application/grpc");
      expect(headers["grpc-status"]).toBe(String(grpc.status.RESOURCE_EXHAUSTED));
      expect(headers["x-mesher-error"]).toBe("rate_limited");
      expect(flags & 0x1).toBe(0x1); // END_STREAM on the headers: trailers-only
      expect(bytes).toBe(0);
    } finally {
      session.close();
    }
  });

  test("the provider chain runs too: the provider's rate limit answers RESOURCE_EXHAUSTED through both sidecars", async () => {
    const client = clientFor("guarded");
    expect((await unary(client, { text: "first" })).err).toBeUndefined();
    const { err } = await unary(client, { text: "second" });
    expect(err!.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err!.details).toContain("to guarded from shop");
    expect(err!.metadata.get("x-mesher-error")).toEqual(["rate_limited"]);
  });

  test("a dead endpoint trips the breaker: UNAVAILABLE from the connection, then circuit_open without trying", async () => {
    const client = clientFor("dead");
    const codes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { err } = await unary(client, { text: "x" });
      expect(err!.code).toBe(grpc.status.UNAVAILABLE);
      codes.push(String(err!.metadata.get("x-mesher-error")[0]));
    }
    expect(codes.slice(0, 3)).toEqual(["upstream_connect_failure", "upstream_connect_failure", "upstream_connect_failure"]);
    expect(codes.slice(3)).toEqual(["circuit_open", "circuit_open", "circuit_open"]);

    // A client-streaming call gets the refusal while it is still sending.
    const err = await new Promise<grpc.ServiceError>((resolve, reject) => {
      const call = (client as unknown as Record<string, Function>).ClientStream!((e: grpc.ServiceError | null) =>
        e ? resolve(e) : reject(new Error("the call succeeded")),
      ) as grpc.ClientWritableStream<Partial<Req>>;
      call.write({ text: "a" });
    });
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(err.metadata.get("x-mesher-error")).toEqual(["circuit_open"]);
  });

  test("UNAVAILABLE from the app counts against the breaker; once open, calls no longer reach the app", async () => {
    const client = clientFor("flaky");
    for (let i = 0; i < 3; i++) {
      const { err } = await unary(client, { text: "x", failCode: grpc.status.UNAVAILABLE });
      expect(err!.code).toBe(grpc.status.UNAVAILABLE);
      expect(err!.details).toBe("app says no to x"); // the app's own status, passed through
    }
    const before = v1.seen.unary;
    const { err } = await unary(client, { text: "fine now" });
    expect(err!.code).toBe(grpc.status.UNAVAILABLE);
    expect(err!.metadata.get("x-mesher-error")).toEqual(["circuit_open"]);
    expect(v1.seen.unary).toBe(before);
  });

  test("a breaker fallback answers in gRPC terms: a status, or messages", async () => {
    const client = clientFor("cached");
    expect((await unary(client, { text: "x" })).err!.metadata.get("x-mesher-error")).toEqual(["upstream_connect_failure"]);
    const { err } = await unary(client, { text: "x" });
    expect(err!.code).toBe(grpc.status.NOT_FOUND);
    expect(err!.details).toBe("served from fallback");

    const canned = clientFor("canned");
    await unary(canned, { text: "x" }); // trips the breaker
    const { reply } = await unary(canned, { text: "x" });
    expect(reply).toMatchObject({ text: "canned", servedBy: "fallback" });
  });

  test("outlier detection ejects the dead endpoint: after one failure every call reaches the live one; retry is not run", async () => {
    const client = clientFor("halfdead");
    const results = [];
    for (let i = 0; i < 7; i++) results.push(await unary(client, { text: `${i}` }));
    const failed = results.filter((r) => r.err);
    // Round-robin meets the dead endpoint once in the first two calls; no retries for gRPC: that call fails.
    expect(failed).toHaveLength(1);
    expect(failed[0]!.err!.code).toBe(grpc.status.UNAVAILABLE);
    expect(results.filter((r) => r.reply).every((r) => r.reply!.servedBy === "v2")).toBe(true);
    expect(results.slice(2).every((r) => r.reply?.servedBy === "v2")).toBe(true);
  });

  test("the timeout also ends a stream that has started: messages, then DEADLINE_EXCEEDED in trailers", async () => {
    const bidi = (clientFor("slow") as unknown as Record<string, Function>).Bidi!() as grpc.ClientDuplexStream<Partial<Req>, Reply>;
    const replies: string[] = [];
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      bidi.on("data", (r: Reply) => replies.push(r.text));
      bidi.on("error", resolve);
      bidi.write({ text: "one" }); // answered at once; then the stream stays open past the 200 ms timeout
    });
    expect(replies).toEqual(["ONE"]);
    expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(err.metadata.get("x-mesher-error")).toEqual(["upstream_timeout"]);
    for (let i = 0; i < 100 && !v1.cancelled.includes("bidi"); i++) await Bun.sleep(20);
    expect(v1.cancelled).toContain("bidi");
  });

  test("the service's timeout bounds the call: DEADLINE_EXCEEDED, and the app sees the call cancelled", async () => {
    const { err } = await unary(clientFor("slow"), { text: "too-slow", delayMs: 5000 });
    expect(err!.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(err!.metadata.get("x-mesher-error")).toEqual(["upstream_timeout"]);
    for (let i = 0; i < 100 && !v1.cancelled.includes("too-slow"); i++) await Bun.sleep(20);
    expect(v1.cancelled).toContain("too-slow");
  });

  test("a reload swaps the gRPC chains: a new route rule applies to the next call", async () => {
    const endpoints = [
      { address: b1.addresses.grpcProvider!, tags: { version: "v1" } },
      { address: b2.addresses.grpcProvider!, tags: { version: "v2" } },
    ];
    const config = (version: string) => ({
      service: { name: "shop" },
      listen: { consumer: "127.0.0.1:0", grpc: "127.0.0.1:0" },
      services: { greeter: { grpcEndpoints: endpoints, routes: [{ route: [{ tags: { version } }] }] } },
    });
    const m = startSidecar(config("v1"));
    const client = echoClient(m.addresses.grpc!, "greeter");
    try {
      expect(await servedBy(client, 2)).toEqual(["v1", "v1"]);
      m.reload(resolveConfig(config("v2")));
      expect(await servedBy(client, 2)).toEqual(["v2", "v2"]);
    } finally {
      client.close();
      await m.stop();
    }
  });

  test("calls are in the metrics like HTTP requests: by route and endpoint, refusals by error code, gRPC status mapped to a class", async () => {
    const text = await (await fetch(`http://${a.addresses.admin}/v1/mesher/metrics`)).text();
    const count = (labels: string) => {
      const line = text.split("\n").find((l) => l.startsWith("mesher_requests_total{") && labels.split(",").every((x) => l.includes(x)));
      return Number(line?.split(" ").pop() ?? 0);
    };
    // Rate limited: RESOURCE_EXHAUSTED counts as 429; the breaker's refusals and dead endpoints as 503.
    expect(count(`service="limited",status_class="4xx",error_code="rate_limited"`)).toBe(2); // the grpc-js call and the raw one
    expect(count(`service="dead",status_class="5xx",error_code="circuit_open"`)).toBe(4);
    expect(count(`service="dead",status_class="5xx",error_code="upstream_connect_failure"`)).toBe(3);
    expect(count(`service="greeter",route="0",endpoint="${b2.addresses.grpcProvider}",status_class="2xx"`)).toBe(4);
    expect(count(`service="slow",status_class="5xx",error_code="upstream_timeout"`)).toBe(2);
  });
});

describe("gRPC calls are traced like HTTP requests", () => {
  test("one call gives a client span on the caller's sidecar and a server span on the provider's, in one trace", async () => {
    const otlp = await startOtlpReceiver();
    const app = await startGrpcApp("traced");
    const tracing = { sampler: 1, flushInterval: "200ms", otlp: { endpoint: otlp.url } };
    const b = startSidecar({ service: { name: "greeter", ports: { grpc: app.port } }, listen: { grpcProvider: "127.0.0.1:0" }, tracing });
    const a = startSidecar({
      service: { name: "shop" },
      listen: { grpc: "127.0.0.1:0" },
      services: { greeter: { grpcEndpoints: [b.addresses.grpcProvider!] } },
      tracing,
    });
    const client = echoClient(a.addresses.grpc!, "greeter");
    try {
      expect((await unary(client, { text: "t" })).err).toBeUndefined();
      const spans = await otlp.waitFor((s) => s.length >= 2);
      const out = spans.find((s) => s.service === "shop")!;
      const inbound = spans.find((s) => s.service === "greeter")!;
      expect(out.kind).toBe("SPAN_KIND_CLIENT");
      expect(inbound.kind).toBe("SPAN_KIND_SERVER");
      expect(inbound.traceId).toBe(out.traceId);
      expect(inbound.parentSpanId).toBe(out.spanId); // traceparent travelled as gRPC metadata
      expect(out.attributes["url.path"]).toBe("/mesher.test.Echo/Unary");
      expect(out.attributes["mesher.cluster"]).toBe("grpc:greeter");
      expect(out.attributes["http.response.status_code"]).toBe(200);
    } finally {
      client.close();
      await Promise.all([a.stop(), b.stop()]);
      app.stop();
      await otlp.stop();
    }
  });
});
