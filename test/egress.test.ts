import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { readFileSync } from "node:fs";
import { makeCert, type CertFiles } from "./certs.ts";
import { curl, run, startApp, startEchoApp, startSidecar, twoSidecars } from "./helpers.ts";
import type { Mesher } from "../src/server.ts";
import { servesConnect } from "../src/egress/match.ts";

/** curl through a proxy; reports the CONNECT answer's status as well. */
async function curlConnect(args: string[]): Promise<{ code: number; connect: number; status: number; body: string; stderr: string }> {
  const r = await run(["curl", "-sS", "-o", "-", "-w", "\n%{http_connect} %{http_code}", ...args]);
  const i = r.stdout.lastIndexOf("\n");
  const [connect, status] = r.stdout.slice(i + 1).split(" ").map(Number);
  return { code: r.code, connect: connect!, status: status!, body: r.stdout.slice(0, i), stderr: r.stderr };
}

describe("egress: the app reaches allowed external hosts, and only those", () => {
  let certs: CertFiles;
  let external: Server<undefined>; // an "external" HTTPS host: localhost with a self-signed cert
  const plain = startEchoApp("external-plain");
  let sidecar: Mesher;
  let open: Mesher;
  let proxy: string;

  beforeAll(async () => {
    certs = await makeCert(["localhost", "127.0.0.1"]);
    external = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: readFileSync(certs.cert, "utf8"), key: readFileSync(certs.key, "utf8") },
      fetch: (req) => new Response(`secure hello ${new URL(req.url).pathname}`),
    });
    sidecar = startSidecar({
      service: { name: "shop" },
      egress: [
        { name: "local-https", hosts: ["localhost"], ports: [{ port: external.port!, protocol: "HTTPS" }, { port: plain.port!, protocol: "HTTP" }] },
        { hosts: ["*.example.org"] },
      ],
    });
    proxy = `http://${sidecar.addresses.consumer}`;
    open = startSidecar({ service: { name: "open" }, egress: { allowAll: true } });
  });
  afterAll(async () => {
    await Promise.all([sidecar.stop(), open.stop()]);
    external.stop(true);
    plain.stop(true);
  });

  test("curl -x to an allowed https:// host tunnels through CONNECT", async () => {
    const r = await curlConnect(["-x", proxy, "--cacert", certs.cert, `https://localhost:${external.port}/hi`]);
    expect(r.connect).toBe(200);
    expect(r.status).toBe(200);
    expect(r.body).toBe("secure hello /hi");
  });

  test("CONNECT to a host no rule allows is refused with 403", async () => {
    const r = await curlConnect(["-x", proxy, "--cacert", certs.cert, `https://127.0.0.1:${external.port}/hi`]);
    expect(r.connect).toBe(403);
    expect(r.code).not.toBe(0);
  });

  test("CONNECT to an allowed host on a port the rule does not list is refused", async () => {
    const r = await run(["curl", "-sS", "-i", "-p", "-x", proxy, `http://localhost:${plain.port! + 1}/`]);
    expect(r.stdout).toContain("403");
  });

  test("the refusal is the JSON error", async () => {
    const r = await run(["curl", "-sS", "-i", "--http1.1", "-X", "CONNECT", "--request-target", "evil.test:443", proxy]);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 403/);
    expect(r.stdout).toContain("x-mesher-error: forbidden");
    expect(JSON.parse(r.stdout.slice(r.stdout.indexOf("\r\n\r\n") + 4)).error.code).toBe("forbidden");
  });

  test("plain HTTP to an allowed external host goes straight there, without the mesh identity", async () => {
    const r = await curl(["-x", proxy, `http://localhost:${plain.port}/out?q=1`]);
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body);
    expect(body.app).toBe("external-plain");
    expect(body.path).toBe("/out?q=1");
    expect(body.headers["x-cse-context"]).toBeUndefined();
  });

  test("plain HTTP to a host that is neither a mesh service nor allowed gets 403 forbidden", async () => {
    const r = await curl(["-x", proxy, "http://api.unlisted.test/x"]);
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).error.code).toBe("forbidden");
  });

  test("a wildcard rule does not match the bare domain or a look-alike", async () => {
    // *.example.org allows a.example.org (it would be dialled); these two are refused outright.
    for (const host of ["example.org", "aexample.org", "a.exampleXorg"]) {
      const r = await curl(["-x", proxy, `http://${host}/`]);
      expect(r.status).toBe(403);
    }
  });

  test("egress.allowAll lets plain HTTP and CONNECT reach any host", async () => {
    const p = `http://${open.addresses.consumer}`;
    const r = await curl(["-x", p, `http://127.0.0.1:${plain.port}/any`]);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).app).toBe("external-plain");
    const t = await curlConnect(["-x", p, "--cacert", certs.cert, `https://127.0.0.1:${external.port}/any`]);
    expect(t.status).toBe(200);
    expect(t.body).toBe("secure hello /any");
  });

  test("Python's urllib with https_proxy tunnels to the allowed host", async () => {
    const script = `
import ssl, urllib.request
ctx = ssl.create_default_context(cafile=${JSON.stringify(certs.cert)})
print(urllib.request.urlopen("https://localhost:${external.port}/py", context=ctx).read().decode())`;
    const r = await run(["python3", "-c", script], { env: { https_proxy: proxy, HTTPS_PROXY: proxy, no_proxy: "" } });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("secure hello /py");
  });
});

describe("Python's urllib with http_proxy through the consumer", () => {
  const app = startEchoApp("promotion");
  const mesh = twoSidecars(app.port!);
  afterAll(async () => {
    await mesh.stop();
    app.stop(true);
  });

  test("reaches a mesh service, body and headers intact", async () => {
    const script = `
import json, urllib.request
req = urllib.request.Request("http://promotion/py?x=1", data=b"x" * 1000, headers={"X-Test": "1"})
print(urllib.request.urlopen(req).read().decode())`;
    const r = await run(["python3", "-c", script], { env: { http_proxy: mesh.proxy, HTTP_PROXY: mesh.proxy, no_proxy: "" } });
    expect(r.stderr).toBe("");
    const body = JSON.parse(r.stdout);
    expect(body.app).toBe("promotion");
    expect(body.method).toBe("POST");
    expect(body.path).toBe("/py?x=1");
    expect(body.bodyBytes).toBe(1000);
    expect(body.headers["x-test"]).toBe("1");
  });
});

describe('listen.connect: "auto" (the default)', () => {
  const plainOnly = startSidecar({ service: { name: "web" }, egress: [{ hosts: ["api.example.com"], ports: [{ port: 80, protocol: "HTTP" }] }] });
  afterAll(() => plainOnly.stop());

  test("without an egress rule that could allow a tunnel, Bun.serve serves the port and refuses CONNECT with 403", async () => {
    const r = await curlConnect(["-x", `http://${plainOnly.addresses.consumer}`, "https://api.example.com/"]);
    expect(r.connect).toBe(403);
    expect(r.code).not.toBe(0);
  });

  test("choosing the engine: an HTTPS port, a rule without ports, or allowAll need CONNECT", () => {
    const rule = (ports: { port: number; protocol: string }[]) => ({ allowAll: false, rules: [{ hosts: ["a"], ports }] });
    expect(servesConnect("auto", { allowAll: false, rules: [] } as never)).toBe(false);
    expect(servesConnect("auto", rule([{ port: 80, protocol: "HTTP" }]) as never)).toBe(false);
    expect(servesConnect("auto", rule([{ port: 443, protocol: "HTTPS" }]) as never)).toBe(true);
    expect(servesConnect("auto", rule([]) as never)).toBe(true);
    expect(servesConnect("auto", { allowAll: true, rules: [] } as never)).toBe(true);
    expect(servesConnect(true, { allowAll: false, rules: [] } as never)).toBe(true);
    expect(servesConnect(false, { allowAll: true, rules: [] } as never)).toBe(false);
  });
});

describe("with listen.connect: false", () => {
  const sidecar = startSidecar({ service: { name: "fast" }, listen: { connect: false }, egress: { allowAll: true } });
  afterAll(() => sidecar.stop());

  test("CONNECT is answered 405 with the reason, not attempted", async () => {
    const r = await curlConnect(["-x", `http://${sidecar.addresses.consumer}`, "https://localhost:1/"]);
    expect(r.connect).toBe(405);
  });
});

describe("the egress chain: a rule's timeout and retry apply to calls leaving the mesh", () => {
  let calls = 0;
  const flaky = startApp((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/hang") return new Promise<Response>(() => {});
    calls++;
    return calls % 2 === 1 ? new Response("busy", { status: 503 }) : new Response(`ok after ${calls}`);
  });
  const sidecar = startSidecar({
    service: { name: "shop" },
    egress: [{ name: "flaky", hosts: ["127.0.0.1"], ports: [{ port: flaky.port! }], timeout: "300ms", retry: { attempts: 1, on: ["5xx"] } }],
  });
  const proxy = `http://${sidecar.addresses.consumer}`;
  afterAll(async () => {
    await sidecar.stop();
    flaky.stop(true);
  });

  test("a 503 is retried once on the same external host", async () => {
    const r = await curl(["-x", proxy, `http://127.0.0.1:${flaky.port}/x`]);
    expect(r.status).toBe(200);
    expect(r.body).toBe("ok after 2");
  });

  test("a host that does not answer in time gets 504 upstream_timeout", async () => {
    const r = await curl(["-x", proxy, `http://127.0.0.1:${flaky.port}/hang`]);
    expect(r.status).toBe(504);
    expect(JSON.parse(r.body).error.code).toBe("upstream_timeout");
  });
});
