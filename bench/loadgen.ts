/**
 * An open-loop, fixed-rate HTTP/1.1 load generator (wrk2's idea; wrk2 is not in Debian and no
 * maintained npm tool does open-loop over keep-alive without being the bottleneck itself).
 *
 * Requests are scheduled at fixed intervals from the start, whatever the responses do; each
 * latency is measured from when its slot came due (to the timer tick, ~1 ms), not from when a
 * connection was free to send it, so a stalled proxy cannot hide its stall by slowing the
 * generator down (coordinated omission). Connections are keep-alive, one request
 * in flight each; when all are busy a new one is opened up to --connections, then requests
 * queue (and their queueing time counts).
 *
 *   bun bench/loadgen.ts --address 127.0.0.1:8080 --host app --rate 3000 --duration 10
 *
 * --abort P: P% of requests are abandoned mid-response (the connection is closed at the first
 * response bytes), as clients that give up do; they count as "aborted", not in the latencies.
 * --abort-path sends those to another path (the bench app's /stream answers slowly).
 *
 * Prints one line: LOADGEN {"sent","done","errors","aborted","rate","p50","p99","max"} (µs).
 * Only responses with Content-Length or chunked bodies are understood (enough for the bench).
 */
import type { Socket } from "bun";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    address: { type: "string" },
    host: { type: "string", default: "localhost" },
    path: { type: "string", default: "/" },
    rate: { type: "string", default: "3000" },
    duration: { type: "string", default: "5" },
    connections: { type: "string", default: "64" },
    abort: { type: "string", default: "0" },
    "abort-path": { type: "string" },
  },
});
const address = values.address!;
const i = address.lastIndexOf(":");
const hostname = address.slice(0, i);
const port = Number(address.slice(i + 1));
const rate = Number(values.rate);
const durationMs = Number(values.duration) * 1000;
const maxConns = Number(values.connections);
const abortShare = Number(values.abort) / 100;
const request = new TextEncoder().encode(`GET ${values.path} HTTP/1.1\r\nHost: ${values.host}\r\n\r\n`);
const abandonedRequest = new TextEncoder().encode(`GET ${values["abort-path"] ?? values.path} HTTP/1.1\r\nHost: ${values.host}\r\n\r\n`);

interface Conn {
  socket?: Socket<Conn>;
  buf: string;
  /** Scheduled time (performance.now ms) of the request in flight; -1 when idle. */
  current: number;
  /** The request in flight is to be abandoned at its first response bytes. */
  abandon: boolean;
}

const latencies: number[] = [];
const idle: Conn[] = [];
const pending: number[] = [];
let conns = 0;
let sent = 0;
let done = 0;
let errors = 0;
let aborted = 0;

function send(c: Conn, scheduled: number): void {
  c.current = scheduled;
  c.abandon = abortShare > 0 && Math.random() < abortShare;
  c.socket!.write(c.abandon ? abandonedRequest : request);
}

function dispatch(scheduled: number): void {
  const c = idle.pop();
  if (c) return send(c, scheduled);
  pending.push(scheduled);
  if (conns < maxConns) open();
}

function release(c: Conn): void {
  c.current = -1;
  const next = pending.shift();
  if (next !== undefined) send(c, next);
  else idle.push(c);
}

/** Length of a complete response at the start of `buf`, or -1 when more bytes are needed. */
function complete(buf: string): number {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return -1;
  const head = buf.slice(0, end).toLowerCase();
  const m = /\r\ncontent-length:\s*(\d+)/.exec(head);
  if (m) {
    const total = end + 4 + Number(m[1]);
    return buf.length >= total ? total : -1;
  }
  if (head.includes("transfer-encoding: chunked")) {
    const z = buf.indexOf("\r\n0\r\n\r\n", end);
    if (z >= 0) return z + 7;
    return buf.startsWith("0\r\n\r\n", end + 4) ? end + 9 : -1;
  }
  return end + 4; // no body
}

function open(): void {
  conns++;
  const c: Conn = { buf: "", current: -1, abandon: false };
  Bun.connect<Conn>({
    hostname,
    port,
    data: c,
    socket: {
      open(s) {
        c.socket = s;
        release(c);
      },
      data(s, chunk) {
        if (c.abandon && c.current >= 0) {
          aborted++;
          done++;
          c.current = -1;
          s.terminate(); // close -> conns--; the next request opens a new connection
          return;
        }
        c.buf += chunk.toString("latin1");
        for (;;) {
          const n = complete(c.buf);
          if (n < 0) return;
          if (!c.buf.startsWith("HTTP/1.1 2")) errors++;
          c.buf = c.buf.slice(n);
          if (c.current >= 0) {
            latencies.push(performance.now() - c.current);
            done++;
            release(c);
          }
        }
      },
      close() {
        conns--;
        if (c.current >= 0) errors++, done++;
        const k = idle.indexOf(c);
        if (k >= 0) idle.splice(k, 1);
        if (pending.length && conns < maxConns) open();
      },
      error() {},
    },
  }).catch(() => {
    conns--;
    errors++;
  });
}

const t0 = performance.now();
const interval = 1000 / rate;
await new Promise<void>((resolve) => {
  const timer = setInterval(() => {
    const now = performance.now();
    const due = Math.min(Math.floor((now - t0) / interval), Math.floor(durationMs / interval));
    // Charged from the tick that found them due rather than from their exact slot: Bun's timers
    // fire about once a millisecond, and that jitter is the generator's, not the proxy's.
    // Queueing behind busy connections still counts (coordinated omission stays corrected).
    while (sent < due) sent++, dispatch(now);
    if (sent >= Math.floor(durationMs / interval)) {
      clearInterval(timer);
      resolve();
    }
  }, 1);
});
// Let the last requests finish (bounded).
const deadline = performance.now() + 3000;
while (done < sent && performance.now() < deadline) await Bun.sleep(5);
const elapsed = (performance.now() - t0) / 1000;

latencies.sort((a, b) => a - b);
const pct = (p: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0) * 1000);
console.log(
  `LOADGEN ${JSON.stringify({ sent, done, errors: errors + (sent - done), aborted, rate: Math.round(done / elapsed), p50: pct(50), p99: pct(99), max: pct(100) })}`,
);
process.exit(0);
