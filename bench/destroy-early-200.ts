/**
 * Bun 1.4.5 node:http: `req.destroy()` on a request whose body has not been read to the end,
 * called after the tick of the 'request' event, makes Bun answer
 * "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" (no body) and close. Node closes the
 * connection without an answer. Whatever the handler writes afterwards is lost, and a client
 * takes the empty 200 as a success.
 *
 *   bun bench/destroy-early-200.ts
 *
 * Prints what a raw client received for each way of giving up on the body. On Bun 1.4.5:
 *   destroy in the request tick             ""                      (connection closed)
 *   req.destroy() a tick later              "HTTP/1.1 200 OK..."    <- the bug
 *   req.destroy() a tick later, whole body  "HTTP/1.1 200 OK..."    <- the bug
 *   req.destroy() after reading a chunk     "HTTP/1.1 200 OK..."    <- the bug
 *   req.socket.destroy() a tick later       ""
 * Node 20 (the same script with setTimeout for Bun.sleep) prints "" on every line.
 * mesher's node:http engine hit the second line when fetch cancelled a request body because
 * the upstream had answered first (src/listeners/nodeserve.ts, pullStream).
 */
import http from "node:http";
import net from "node:net";

type Mode = "sync" | "tick" | "read" | "socket";

async function attempt(mode: Mode, wholeBody: boolean): Promise<string> {
  const server = http.createServer(async (req, res) => {
    if (mode === "read") await req[Symbol.asyncIterator]().next();
    if (mode !== "sync") await Bun.sleep(0);
    if (mode === "socket") req.socket.destroy();
    else req.destroy();
    setTimeout(() => {
      try {
        res.writeHead(503).end("the real answer");
      } catch {}
    }, 50);
  });
  server.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  const socket = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
  await new Promise((r) => socket.once("connect", r));
  let got = "";
  socket.on("data", (d) => (got += d));
  socket.on("error", (e) => (got += `<${(e as NodeJS.ErrnoException).code}>`));
  const closed = new Promise((r) => socket.once("close", r));
  socket.write(`POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\n${wholeBody ? "order" : "orde"}`);
  setTimeout(() => {
    if (!socket.destroyed && !wholeBody) socket.write("r");
  }, 100);
  await Promise.race([closed, Bun.sleep(1000)]);
  socket.destroy();
  server.close();
  return got;
}

const cases: [string, Mode, boolean][] = [
  ["destroy in the request tick", "sync", false],
  ["req.destroy() a tick later", "tick", false],
  ["req.destroy() a tick later, whole body", "tick", true],
  ["req.destroy() after reading a chunk", "read", false],
  ["req.socket.destroy() a tick later", "socket", false],
];
for (const [name, mode, whole] of cases) console.log(name.padEnd(40), JSON.stringify(await attempt(mode, whole)));
process.exit(0);
