import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import tls from "node:tls";
import { makeCert, type CertFiles } from "./certs.ts";
import { curl, startEchoApp, startSidecar, tempDir } from "./helpers.ts";
import type { Mesher } from "../src/server.ts";

/** The subject CN of the certificate a TLS listener presents now. */
function peerCN(address: string): Promise<string> {
  const i = address.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)), rejectUnauthorized: false, servername: "localhost" }, () => {
      const cn = s.getPeerCertificate().subject?.CN;
      s.end();
      resolve(String(cn));
    });
    s.once("error", reject);
  });
}

describe("TLS between sidecars, on listeners and upstream calls", () => {
  const app = startEchoApp("promotion");
  const dir = tempDir();
  let server: CertFiles; // the provider's certificate, at a path that the test rewrites
  let client: CertFiles;
  let b: Mesher; // provider, TLS, requires a client certificate
  let a: Mesher; // consumer, calls b over TLS with its client certificate
  let anon: Mesher; // consumer without a client certificate
  let tlsConsumer: Mesher; // consumer listener itself on TLS

  beforeAll(async () => {
    server = await makeCert(["localhost"], "provider", dir);
    client = await makeCert(["shop"], "client", dir);
    b = startSidecar({
      service: { name: "promotion", ports: { http: app.port! } },
      listen: { provider: "127.0.0.1:0", tls: { provider: { cert: server.cert, key: server.key, ca: client.cert, requireClientCert: true } } },
    });
    const services = (withClient: boolean) => ({
      promotion: {
        endpoints: [b.addresses.provider!],
        tls: { ca: server.cert, serverName: "localhost", ...(withClient ? { cert: client.cert, key: client.key } : {}) },
      },
    });
    a = startSidecar({ service: { name: "shop" }, services: services(true) });
    anon = startSidecar({ service: { name: "anon" }, services: services(false) });
    tlsConsumer = startSidecar({
      service: { name: "shop2" },
      services: services(true),
      listen: { tls: { consumer: { cert: server.cert, key: server.key } } },
    });
  });
  afterAll(async () => {
    await Promise.all([a.stop(), b.stop(), anon.stop(), tlsConsumer.stop()]);
    app.stop(true);
  });

  test("a request crosses the TLS hop (CA file, server name, client certificate)", async () => {
    const r = await curl(["-x", `http://${a.addresses.consumer}`, "http://promotion/tls?x=1"]);
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body);
    expect(body.app).toBe("promotion");
    expect(body.path).toBe("/tls?x=1");
  });

  test("a provider that requires client certificates refuses a caller without one", async () => {
    const r = await curl(["-x", `http://${anon.addresses.consumer}`, "http://promotion/tls"]);
    expect(r.status).toBe(502);
    expect(JSON.parse(r.body).error.code).toMatch(/^upstream_/);
  });

  test("the consumer listener serves TLS (an HTTPS proxy URL)", async () => {
    const port = tlsConsumer.addresses.consumer.split(":")[1];
    const r = await curl(["--proxy-cacert", server.cert, "-x", `https://localhost:${port}`, "http://promotion/via-https-proxy"]);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).path).toBe("/via-https-proxy");
  });

  test("a new certificate is served once its files change, and calls keep working", async () => {
    expect(await peerCN(b.addresses.provider!)).toBe("localhost");
    // A new key pair under a new name; the CA file the consumer trusts is the same path.
    const fresh = await makeCert(["localhost"], "fresh", tempDir(), "renewed.localhost");
    // Key first, then cert, as a cert manager might: the half-written pair must not be served.
    writeFileSync(server.key, readFileSync(fresh.key));
    writeFileSync(server.cert, readFileSync(fresh.cert));
    let cn = "";
    for (let i = 0; i < 300 && cn !== "renewed.localhost"; i++) {
      cn = await peerCN(b.addresses.provider!).catch(() => "");
      if (cn !== "renewed.localhost") await Bun.sleep(20);
    }
    expect(cn).toBe("renewed.localhost");
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      // The consumer's CA file changed too; it picks the new one up on its own.
      status = (await curl(["-x", `http://${a.addresses.consumer}`, "http://promotion/after"])).status;
      if (status !== 200) await Bun.sleep(20);
    }
    expect(status).toBe(200);
  });
});

describe("WebSocket over a TLS hop", () => {
  test("wss between the sidecars, from both consumer engines", async () => {
    const dir = tempDir();
    const certs = await makeCert(["localhost"], "p", dir);
    const app = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req, srv) => (srv.upgrade(req, { data: undefined }) ? undefined : new Response("no")),
      websocket: { message: (ws, m) => void ws.send(m) },
    });
    const b = startSidecar({
      service: { name: "promotion", ports: { http: app.port! } },
      listen: { provider: "127.0.0.1:0", tls: { provider: { cert: certs.cert, key: certs.key } } },
      drainTimeout: "1s",
    });
    try {
      for (const connect of [true, false]) {
        const a = startSidecar({
          service: { name: "shop" },
          listen: { connect },
          drainTimeout: "1s",
          services: { promotion: { endpoints: [b.addresses.provider!], tls: { ca: certs.cert, serverName: "localhost" } } },
        });
        const ws = new WebSocket(`ws://${a.addresses.consumer}/`, { headers: { host: "promotion" } } as unknown as string[]);
        await new Promise((resolve, reject) => {
          ws.onopen = resolve;
          ws.onerror = () => reject(new Error("open failed"));
        });
        const got = new Promise((resolve) => (ws.onmessage = (e) => resolve(e.data)));
        ws.send(`over tls ${connect}`);
        expect(await got).toBe(`over tls ${connect}`);
        ws.close();
        await a.stop();
      }
    } finally {
      await b.stop();
      app.stop(true);
    }
  });
});


describe("certificate reload with a half-written pair", () => {
  test("a key that does not match the certificate is not served; the old pair keeps serving until the files agree", async () => {
    const dir = tempDir();
    const certs = await makeCert(["localhost"], "p", dir, "first.localhost");
    const app = startEchoApp("promotion");
    const b = startSidecar({
      service: { name: "promotion", ports: { http: app.port! } },
      listen: { provider: "127.0.0.1:0", tls: { provider: { cert: certs.cert, key: certs.key } } },
    });
    const errors: string[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void errors.push(args.map(String).join(" "));
    try {
      const next = await makeCert(["localhost"], "next", tempDir(), "second.localhost");
      writeFileSync(certs.key, readFileSync(next.key)); // the key alone: the pair does not match
      for (let i = 0; i < 300 && !errors.some((e) => e.includes("not reloading")); i++) await Bun.sleep(10);
      expect(errors.join("\n")).toContain("not reloading the certificate");
      expect(await peerCN(b.addresses.provider!)).toBe("first.localhost");
      writeFileSync(certs.cert, readFileSync(next.cert)); // now they agree
      let cn = "";
      for (let i = 0; i < 300 && cn !== "second.localhost"; i++) {
        cn = await peerCN(b.addresses.provider!).catch(() => "");
        if (cn !== "second.localhost") await Bun.sleep(10);
      }
      expect(cn).toBe("second.localhost");
    } finally {
      console.error = original;
      await b.stop();
      app.stop(true);
    }
  });
});
