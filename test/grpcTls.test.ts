import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { readFileSync, writeFileSync } from "node:fs";
import tls from "node:tls";
import { resolveConfig } from "../src/config/resolve.ts";
import type { Mesher } from "../src/server.ts";
import { makeCert, type CertFiles } from "./certs.ts";
import { Echo, echoClient, startGrpcApp, unary, type GrpcApp, type Reply } from "./grpcApp.ts";
import { startSidecar, tempDir } from "./helpers.ts";

/** The subject CN of the certificate a TLS HTTP/2 listener presents now. */
function peerCN(address: string): Promise<string> {
  const i = address.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const s = tls.connect(
      { host: address.slice(0, i), port: Number(address.slice(i + 1)), rejectUnauthorized: false, servername: "localhost", ALPNProtocols: ["h2"] },
      () => {
        const cn = s.getPeerCertificate().subject?.CN;
        s.destroy();
        resolve(String(cn));
      },
    );
    s.once("error", reject);
  });
}

/** A grpc-js client over TLS trusting `ca`, with a client certificate when given. */
function tlsClient(address: string, authority: string, ca: string, client?: CertFiles): grpc.Client {
  const creds = grpc.credentials.createSsl(
    readFileSync(ca),
    client ? readFileSync(client.key) : null,
    client ? readFileSync(client.cert) : null,
  );
  return new Echo(address, creds, { "grpc.default_authority": authority, "grpc.ssl_target_name_override": "localhost" });
}

describe("gRPC over TLS: client -TLS-> A (listen.grpc) -TLS, client cert-> B (grpcProvider) -> app", () => {
  let app: GrpcApp;
  const dir = tempDir();
  let provider: CertFiles; // B's certificate, rewritten by the reload test
  let consumer: CertFiles; // A's gRPC listener certificate
  let shop: CertFiles; // A's client certificate (also the CA B trusts for clients)
  let a: Mesher, b: Mesher, anon: Mesher;
  let idle: Mesher; // like A, but makes no call before the certificate changes
  const clients: grpc.Client[] = [];
  const track = (c: grpc.Client) => (clients.push(c), c);

  beforeAll(async () => {
    app = await startGrpcApp("greeter");
    provider = await makeCert(["localhost"], "provider", dir);
    consumer = await makeCert(["localhost"], "consumer", dir);
    shop = await makeCert(["shop"], "shop", dir);
    b = startSidecar({
      service: { name: "greeter", ports: { grpc: app.port } },
      listen: {
        grpcProvider: "127.0.0.1:0",
        tls: { grpcProvider: { cert: provider.cert, key: provider.key, ca: shop.cert, requireClientCert: true } },
      },
    });
    const greeter = (withCert: boolean) => ({
      greeter: {
        grpcEndpoints: [b.addresses.grpcProvider!],
        tls: { ca: provider.cert, serverName: "localhost", ...(withCert ? { cert: shop.cert, key: shop.key } : {}) },
      },
    });
    a = startSidecar({
      service: { name: "shop" },
      listen: { grpc: "127.0.0.1:0", tls: { grpc: { cert: consumer.cert, key: consumer.key } } },
      services: greeter(true),
    });
    anon = startSidecar({ service: { name: "anon" }, listen: { grpc: "127.0.0.1:0" }, services: greeter(false) });
    idle = startSidecar({ service: { name: "idle" }, listen: { grpc: "127.0.0.1:0" }, services: greeter(true) });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all([a.stop(), b.stop(), anon.stop(), idle.stop()]);
    app.stop();
  });

  test("unary and server streaming cross both TLS hops; the app sees the caller and the authority", async () => {
    const client = track(tlsClient(a.addresses.grpc!, "greeter", consumer.cert));
    const { reply, err } = await unary(client, { text: "secure" });
    expect(err).toBeUndefined();
    expect(reply).toMatchObject({ text: "secure", authority: "greeter", caller: "shop", servedBy: "greeter" });

    const call = (client as unknown as Record<string, Function>).ServerStream!({ text: "s", count: 20 }) as grpc.ClientReadableStream<Reply>;
    const got: number[] = [];
    await new Promise<void>((resolve, reject) => {
      call.on("data", (r: Reply) => got.push(r.index));
      call.on("end", resolve);
      call.on("error", reject);
    });
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  test("the TLS listener does not serve h2c, and a client that does not trust its CA is refused", async () => {
    const plain = track(echoClient(a.addresses.grpc!, "greeter"));
    expect((await unary(plain, { text: "x" }, { deadline: Date.now() + 3000 })).err?.code).toBe(grpc.status.UNAVAILABLE);
    const wrongCa = track(tlsClient(a.addresses.grpc!, "greeter", provider.cert));
    expect((await unary(wrongCa, { text: "x" }, { deadline: Date.now() + 3000 })).err?.code).toBe(grpc.status.UNAVAILABLE);
  });

  test("requireClientCert: the provider refuses callers without a client certificate", async () => {
    // A sidecar whose services.greeter.tls has no cert/key: mesher's own UNAVAILABLE.
    const viaAnon = track(echoClient(anon.addresses.grpc!, "greeter"));
    const { err } = await unary(viaAnon, { text: "anon" });
    expect(err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(err?.metadata.get("x-mesher-error")[0]).toBe("upstream_reset");
    // A grpc-js client straight to the provider listener, without and with a client certificate.
    const direct = track(tlsClient(b.addresses.grpcProvider!, "greeter", provider.cert));
    expect((await unary(direct, { text: "x" }, { deadline: Date.now() + 3000 })).err?.code).toBe(grpc.status.UNAVAILABLE);
    const withCert = track(tlsClient(b.addresses.grpcProvider!, "greeter", provider.cert, shop));
    expect((await unary(withCert, { text: "direct" })).reply?.text).toBe("direct");
  });

  test("a new provider certificate is served once its files change, and calls through A keep working", async () => {
    expect(await peerCN(b.addresses.grpcProvider!)).toBe("localhost");
    const fresh = await makeCert(["localhost"], "fresh", tempDir(), "renewed.localhost");
    // Key first, then cert: the half-written pair must not be served (the old one keeps serving).
    writeFileSync(provider.key, readFileSync(fresh.key));
    writeFileSync(provider.cert, readFileSync(fresh.cert));
    let cn = "";
    for (let i = 0; i < 300 && cn !== "renewed.localhost"; i++) {
      cn = await peerCN(b.addresses.grpcProvider!).catch(() => "");
      if (cn !== "renewed.localhost") await Bun.sleep(20);
    }
    expect(cn).toBe("renewed.localhost");
    // A trusts provider.cert, which is the new certificate now: its next session uses it.
    const client = track(tlsClient(a.addresses.grpc!, "greeter", consumer.cert));
    let text = "";
    for (let i = 0; i < 100 && text !== "after"; i++) {
      text = (await unary(client, { text: "after" })).reply?.text ?? "";
      if (text !== "after") await Bun.sleep(20);
    }
    expect(text).toBe("after");
    // A sidecar with no session yet verifies the new certificate with the CA file as it is now.
    const { reply, err } = await unary(track(echoClient(idle.addresses.grpc!, "greeter")), { text: "idle" });
    expect(err).toBeUndefined();
    expect(reply).toMatchObject({ text: "idle", caller: "idle" });
  });
});

describe("gRPC TLS settings in the config", () => {
  test("unreadable certificate files of the gRPC listeners are config errors naming the field", () => {
    let message = "";
    try {
      resolveConfig({
        service: { name: "shop" },
        listen: {
          grpc: "127.0.0.1:0",
          grpcProvider: "127.0.0.1:0",
          tls: {
            grpc: { cert: "/nonexistent/grpc.pem", key: "/nonexistent/grpc-key.pem" },
            grpcProvider: { cert: "/nonexistent/p.pem", key: "/nonexistent/p-key.pem", ca: "/nonexistent/ca.pem" },
          },
        },
      });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("listen.tls.grpc.cert: a readable PEM file");
    expect(message).toContain("listen.tls.grpc.key: a readable PEM file");
    expect(message).toContain("listen.tls.grpcProvider.ca: a readable PEM file");
  });
});
