/**
 * Every failure mesher itself answers is a JSON error with a stable code and a header naming it.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { resolveConfig } from "../src/config/resolve.ts";
import { curl, startSidecar, viaProxy, closedPort } from "./helpers.ts";

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("x-mesher-error")).toBe(code);
  expect(res.headers.get("content-type")).toContain("application/json");
  const body = await res.json();
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  expect(body.error.message.length).toBeGreaterThan(0);
}

describe("error codes", () => {
  // An app that never answers, and a raw server that hangs up on every request.
  const hanging = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Promise<Response>(() => {}) });
  const hangup = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: (sock) => void sock.end() } });
  const a = startSidecar({
    service: { name: "shop" },
    services: {
      empty: { endpoints: [] },
      refused: { endpoints: [`127.0.0.1:${closedPort()}`] },
      hanging: { endpoints: [`127.0.0.1:${hanging.port}`], timeout: 100 },
      hangup: { endpoints: [`127.0.0.1:${hangup.port}`] },
    },
  });
  // A service whose endpoint is this sidecar's own consumer listener: a loop.
  const loopTarget = startSidecar({
    service: { name: "loop2" },
    services: { self: { endpoints: [] } },
  });
  loopTarget.reload(resolveConfig({ service: { name: "loop2" }, services: { self: { endpoints: [loopTarget.addresses.consumer] } } }));
  const proxy = `http://${a.addresses.consumer}`;
  afterAll(async () => {
    await Promise.all([a.stop(), loopTarget.stop()]);
    hanging.stop(true);
    hangup.stop(true);
  });

  test("a host that is neither a mesh service nor allowed by egress: 403 forbidden", async () => {
    await expectError(await viaProxy(proxy, "http://nosuch/x"), 403, "forbidden");
  });

  test("a service without endpoints: 503 no_healthy_upstream", async () => {
    await expectError(await viaProxy(proxy, "http://empty/x"), 503, "no_healthy_upstream");
  });

  test("connection refused: 502 upstream_connect_failure", async () => {
    await expectError(await viaProxy(proxy, "http://refused/x"), 502, "upstream_connect_failure");
  });

  test("a request that names the sidecar itself: 508 loop_detected", async () => {
    await expectError(await fetch(`${proxy}/x`), 508, "loop_detected");
  });

  test("a service routed back into the same sidecar: 508 loop_detected", async () => {
    await expectError(await viaProxy(`http://${loopTarget.addresses.consumer}`, "http://self/x"), 508, "loop_detected");
  });

  test("a request without Host: 400 bad_request", async () => {
    const [host, port] = a.addresses.consumer.split(":");
    const raw = await new Promise<string>((resolve, reject) => {
      const sock = connect(Number(port), host!, () => sock.write("GET /x HTTP/1.0\r\n\r\n"));
      let buf = "";
      sock.on("data", (d) => (buf += d.toString()));
      sock.on("end", () => resolve(buf));
      sock.on("error", reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.[01] 400/);
    expect(raw.toLowerCase()).toContain("x-mesher-error: bad_request");
    expect(raw.toLowerCase()).toContain("content-type: application/json");
    expect(JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4)).error.code).toBe("bad_request");
  });

  test("CONNECT to a mesh service (an app with HTTPS_PROXY set to the sidecar) is refused, never forwarded to the app", async () => {
    let reached = 0;
    const app = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => (reached++, new Response("app")) });
    const services = { secure: { endpoints: [`127.0.0.1:${app.port}`] } };
    // With the CONNECT engine (default) no egress rule allows it: 403; on Bun.serve (connect: false): 405.
    const tunnels = startSidecar({ service: { name: "shop" }, services });
    const plain = startSidecar({ service: { name: "shop" }, listen: { consumer: "127.0.0.1:0", admin: false, connect: false }, services });
    try {
      for (const [s, status] of [[tunnels, 403], [plain, 405]] as const) {
        const r = await curl(["-p", "-x", `http://${s.addresses.consumer}`, "http://secure/x"]);
        expect(r.stderr).toContain(`CONNECT tunnel failed, response ${status}`);
      }
      expect(reached).toBe(0);
    } finally {
      await Promise.all([tunnels.stop(), plain.stop()]);
      app.stop(true);
    }
  });

  test("TRACE is refused with 405 (as nginx does) on both engines, not left hanging", async () => {
    const plain = startSidecar({ service: { name: "shop" }, listen: { consumer: "127.0.0.1:0", admin: false, connect: false }, services: { hanging: { endpoints: ["127.0.0.1:1"] } } });
    try {
      for (const p of [proxy, `http://${plain.addresses.consumer}`]) {
        const r = await curl(["-i", "--max-time", "5", "-X", "TRACE", "-x", p, "http://refused/x"]);
        expect(r.status).toBe(405);
        expect(r.body.toLowerCase()).toContain("x-mesher-error: bad_request");
        expect(JSON.parse(r.body.slice(r.body.indexOf("\r\n\r\n") + 4)).error.code).toBe("bad_request");
      }
    } finally {
      await plain.stop();
    }
  });

  test("no response in time: 504 upstream_timeout", async () => {
    await expectError(await viaProxy(proxy, "http://hanging/x"), 504, "upstream_timeout");
  });

  test("a connection closed without an answer: 502 upstream_reset", async () => {
    await expectError(await viaProxy(proxy, "http://hangup/x"), 502, "upstream_reset");
  });

  test("a provider sidecar that knows no local port: 400 bad_request, passed back to the caller", async () => {
    const b = startSidecar({ service: { name: "portless" }, listen: { provider: "127.0.0.1:0" } });
    const c = startSidecar({ service: { name: "shop" }, services: { portless: { endpoints: [b.addresses.provider!] } } });
    try {
      await expectError(await viaProxy(`http://${c.addresses.consumer}`, "http://portless/x"), 400, "bad_request");
    } finally {
      await Promise.all([b.stop(), c.stop()]);
    }
  });
});

describe("upstream responses", () => {
  // A raw HTTP app, to send response headers Bun.serve would not let an app send.
  const raw = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(sock) {
        sock.write(
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Resp-Hop\r\nX-Resp-Hop: 1\r\n" +
            "Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nX-Kept: yes\r\n\r\nok",
        );
      },
    },
  });
  const a = startSidecar({ service: { name: "shop" }, services: { raw: { endpoints: [`127.0.0.1:${raw.port}`] } } });
  afterAll(async () => {
    await a.stop();
    raw.stop(true);
  });

  test("hop-by-hop response headers are not passed back; others are", async () => {
    const res = await viaProxy(`http://${a.addresses.consumer}`, "http://raw/");
    expect(await res.text()).toBe("ok");
    expect(res.headers.get("x-kept")).toBe("yes");
    expect(res.headers.get("x-resp-hop")).toBeNull();
    expect(res.headers.get("proxy-authenticate")).toBeNull();
    // The sidecar may announce its own connection's keep-alive (node:http does); never the upstream's.
    expect(res.headers.get("keep-alive")).not.toBe("timeout=5");
  });

  test("an upstream error status passes through untouched (it is not mesher's error)", async () => {
    const app = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("teapot", { status: 418 }) });
    const s = startSidecar({ service: { name: "shop" }, services: { tea: { endpoints: [`127.0.0.1:${app.port}`] } } });
    try {
      const res = await viaProxy(`http://${s.addresses.consumer}`, "http://tea/");
      expect(res.status).toBe(418);
      expect(res.headers.get("x-mesher-error")).toBeNull();
      expect(await res.text()).toBe("teapot");
    } finally {
      await s.stop();
      app.stop(true);
    }
  });
});

test("a service with capitals in its name (Mesher's ShoppingCart) is reached whatever the Host's case", async () => {
  const app = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("cart") });
  const s = startSidecar({ service: { name: "shop" }, services: { ShoppingCart: { endpoints: [`127.0.0.1:${app.port}`] } } });
  try {
    for (const host of ["ShoppingCart", "shoppingcart"]) {
      const res = await viaProxy(`http://${s.addresses.consumer}`, `http://${host}/`);
      expect(await res.text()).toBe("cart");
    }
  } finally {
    await s.stop();
    app.stop(true);
  }
});
