/**
 * Odd Host headers at the consumer listener, sent by curl as an app would: each gets either the
 * service or a JSON error with its code, never a crash or a silent misroute.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { curl, startEchoApp, startSidecar } from "./helpers.ts";

// Both consumer engines: node:http with CONNECT (the default) and Bun.serve (connect: false).
describe.each([true, false])("Host headers at the consumer listener (listen.connect: %p)", (connect) => {
  const app = startEchoApp("promotion");
  const a = startSidecar({
    service: { name: "shop" },
    listen: { consumer: "127.0.0.1:0", admin: "127.0.0.1:0", connect },
    services: { promotion: { endpoints: [`127.0.0.1:${app.port}`] } },
  });
  const proxy = `http://${a.addresses.consumer}`;
  afterAll(async () => {
    await a.stop();
    app.stop(true);
  });

  /** Origin-form request to the consumer listener with this Host header. */
  async function withHost(host: string) {
    const r = await curl(["-i", "-H", `Host: ${host}`, `${proxy}/items`]);
    const [head, body] = r.body.split("\r\n\r\n", 2) as [string, string];
    const error = /x-mesher-error: (\S+)/i.exec(head)?.[1];
    return { status: r.status, error, body: JSON.parse(body) };
  }

  test("a name in capitals, with a trailing dot (an absolute DNS name), or with an empty port reaches the service", async () => {
    for (const host of ["PROMOTION", "promotion.", "Promotion.:8091", "promotion:"]) {
      const r = await withHost(host);
      expect({ host, status: r.status, app: r.body.app }).toEqual({ host, status: 200, app: "promotion" });
    }
    expect((await withHost("promotion.:8091")).body.headers["x-forwarded-port"]).toBe("8091");
    expect((await withHost("promotion:")).body.headers["x-forwarded-port"]).toBeUndefined();
  });

  test("a port that is not 1..65535 or a broken IPv6 literal is a bad request, not forwarded", async () => {
    for (const host of ["promotion:0", "promotion:abc", "promotion:99999", "promotion:-1", "[::1", "[::1]x", "::1", ":80", ".", "pro motion"]) {
      const r = await withHost(host);
      expect({ host, status: r.status, error: r.error, code: r.body.error?.code }).toEqual({
        host,
        status: 400,
        error: "bad_request",
        code: "bad_request",
      });
    }
  });

  test("an IPv6 literal is a name like any other: not a service, and no egress rule allows it", async () => {
    const r = await withHost("[::1]:8091");
    expect(r.status).toBe(403);
    expect(r.error).toBe("forbidden");
  });

  test("the sidecar's own address in any case is a loop", async () => {
    const port = a.addresses.consumer.split(":")[1];
    for (const host of [`LOCALHOST:${port}`, `127.0.0.1:${port}`]) {
      const r = await withHost(host);
      expect({ host, status: r.status, error: r.error }).toEqual({ host, status: 508, error: "loop_detected" });
    }
  });
});
