/**
 * An upstream that answers before it has read the request body (a 503, a 401, a 413 straight
 * from the headers) on both consumer engines. Its answer must reach the client, and the
 * connection must stay usable. On the node:http engine (Bun 1.4.5) destroying the downstream
 * request to stop reading its body made Bun write `HTTP/1.1 200 OK` + `Connection: close`
 * with no body instead (docs/listeners.md).
 */
import { afterAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { startApp, startSidecar, viaProxy } from "./helpers.ts";

/** Answers from the headers alone: it never reads a body. /hang never answers. */
const app = startApp((req) => {
  if (new URL(req.url).pathname === "/hang") return new Promise<Response>(() => {});
  return req.method === "POST" ? new Response("busy", { status: 503 }) : new Response("fine");
});
afterAll(() => app.stop(true));

/** Sends `first` on a raw connection; once what came back matches `until` (or it closed), sends `then` and hangs up. */
async function raw(address: string, first: string, until: RegExp, then?: string): Promise<string> {
  const [host, port] = address.split(":");
  const socket = net.connect(Number(port), host);
  let got = "";
  const done = new Promise<void>((resolve) => {
    socket.on("data", (d) => {
      got += d;
      if (until.test(got)) resolve();
    });
    socket.once("close", () => resolve());
    socket.on("error", () => resolve());
  });
  socket.write(first);
  await done;
  if (then && !socket.destroyed) socket.write(then);
  socket.destroy();
  return got;
}

for (const connect of [true, false]) {
  describe(`consumer engine ${connect ? "node:http" : "Bun.serve"}: an upstream answering before the body is read`, () => {
    const sidecar = startSidecar({
      service: { name: "shop" },
      listen: { connect },
      services: { flaky: { endpoints: [`127.0.0.1:${app.port}`], timeout: 100 } },
    });
    afterAll(() => sidecar.stop());

    test("its answer reaches a client whose body is still on the way", async () => {
      // Headers and 4 of 5 body bytes; the last byte only after the answer came back.
      const head = "POST http://flaky/x HTTP/1.1\r\nhost: flaky\r\ncontent-length: 5\r\n\r\norde";
      const got = await raw(sidecar.addresses.consumer, head, /\r\n\r\nbusy/, "r");
      expect(got).toStartWith("HTTP/1.1 503");
      expect(got).toEndWith("busy");
    });

    test("a timeout while the body is still on the way answers 504", async () => {
      const head = "POST http://flaky/hang HTTP/1.1\r\nhost: flaky\r\ncontent-length: 5\r\n\r\norde";
      const got = await raw(sidecar.addresses.consumer, head, /upstream_timeout/, "r");
      expect(got).toStartWith("HTTP/1.1 504");
    });

    test("300 keep-alive rounds of GETs then a small POST all get the upstream's answer", async () => {
      const proxy = `http://${sidecar.addresses.consumer}`;
      const wrong: string[] = [];
      for (let round = 0; round < 300; round++) {
        for (let i = 0; i < 2; i++) await (await viaProxy(proxy, "http://flaky/x")).text();
        const r = await viaProxy(proxy, "http://flaky/x", { method: "POST", body: "order" });
        const body = await r.text();
        if (r.status !== 503 || body !== "busy") wrong.push(`round ${round}: ${r.status} ${JSON.stringify(body)}`);
      }
      expect(wrong).toEqual([]);
    });

    test("a large upload the upstream refuses at once gets the refusal, and the connection serves the next request", async () => {
      const proxy = `http://${sidecar.addresses.consumer}`;
      const r = await viaProxy(proxy, "http://flaky/x", { method: "POST", body: new Uint8Array(8 << 20) });
      expect(r.status).toBe(503);
      expect(await r.text()).toBe("busy");
      const next = await viaProxy(proxy, "http://flaky/x");
      expect(await next.text()).toBe("fine");
    });
  });
}
