/**
 * Tracing on the fast path (fastdirect.ts). The decision is taken from the request's header
 * list without building Headers: the same decision the tracer takes (telemetry/tracing/tracer.ts,
 * parent-based with `tracing.sampler` for new traces), in the cases that need no span:
 * - PASS: the request carries a "not sampled" decision (`traceparent` with flags 00,
 *   `b3: 0`, `x-b3-sampled: 0`): it goes on as it came, like the regular path leaves it;
 * - DENY: a new trace, not sampled: `x-b3-sampled: 0` is added (propagation.ts `injectDeny`);
 * - SAMPLE: a new trace, sampled: the tracer builds the span, told the draw was made (so
 *   the share stays `sampler`);
 * - ASK: anything else (a sampled parent, forced tracing, ids to carry on, a format the
 *   fast path does not read): the tracer decides.
 * SAMPLE and ASK requests go to the tracer (`startTrace`), still on the fast path.
 * NO_REQUEST_ID is or-ed in when the request has no `x-request-id` (the regular path adds one
 * whenever tracing is on).
 */
import type { Runtime } from "./runtime.ts";
import type { Hop, TraceCtx } from "../telemetry/tracing/tracer.ts";
import type { HeaderCarrier } from "../telemetry/tracing/propagation.ts";

export const TRACE_PASS = 0;
export const TRACE_DENY = 1;
export const TRACE_SAMPLE = 2;
export const TRACE_ASK = 3;
export const TRACE_NO_REQUEST_ID = 4;

/** A valid version-00 traceparent (the W3C propagator rejects all-zero ids and other versions' rules differ). */
const TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-([0-9a-f]{2})$/;

/** `headers`: lower-case names and values, [name, value, ...]; `ratio`: tracing.sampler. */
export function traceVerdict(headers: string[], ratio: number): number {
  let traceparent: string | undefined;
  let b3: string | undefined;
  let b3Sampled: string | undefined;
  let unread = false;
  let requestId = false;
  for (let i = 0; i < headers.length; i += 2) {
    switch (headers[i]) {
      case "traceparent":
        if (traceparent !== undefined) unread = true; // repeated: the propagator sees them joined
        traceparent = headers[i + 1]!;
        break;
      case "b3":
        if (b3 !== undefined) unread = true;
        b3 = headers[i + 1]!;
        break;
      case "x-b3-sampled":
        if (b3Sampled !== undefined) unread = true;
        b3Sampled = headers[i + 1]!;
        break;
      case "x-b3-traceid":
      case "sw8":
      case "x-ot-span-context":
        unread = true;
        break;
      case "x-envoy-force-trace":
      case "x-client-trace-id":
        return TRACE_ASK;
      case "x-request-id":
        requestId = true;
        break;
    }
  }
  const id = requestId ? 0 : TRACE_NO_REQUEST_ID;
  if (traceparent !== undefined && !unread) {
    const m = TRACEPARENT.exec(traceparent);
    // A valid traceparent decides whatever B3 headers say (the W3C context is read first).
    if (m) return parseInt(m[1]!, 16) & 1 ? TRACE_ASK : TRACE_PASS | id;
    return TRACE_ASK;
  }
  if (unread || traceparent !== undefined) return TRACE_ASK;
  if (b3 !== undefined) return b3 === "0" ? TRACE_PASS | id : TRACE_ASK;
  if (b3Sampled !== undefined) return b3Sampled === "0" ? TRACE_PASS | id : TRACE_ASK;
  return (ratio >= 1 || Math.random() < ratio ? TRACE_SAMPLE : TRACE_DENY) | id;
}

/** A span the fast path started for a request: ended when the response head arrives. */
export interface FastTrace {
  hop: Hop;
  ctx: TraceCtx;
}

/** Headers the tracer may write (propagation.ts inject/injectDeny, and x-request-id). */
export const TRACE_WRITTEN = new Set([
  "traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags",
  "b3", "x-ot-span-context", "sw8", "x-request-id",
]);
/** Headers the tracer reads besides those. */
export const TRACE_READ = new Set([...TRACE_WRITTEN, "x-envoy-force-trace", "x-client-trace-id", "x-envoy-decorator-operation", "user-agent", "host"]);

/**
 * A request's trace headers as the tracer reads and writes them (lower-case names, repeated
 * ones joined as Fetch Headers joins them). A Map, not a Fetch Headers: every Headers call
 * crosses into native code, and a sampled request makes some twenty of them (bench/NOTES.md).
 */
export class TraceHeaders implements HeaderCarrier {
  readonly #m = new Map<string, string>();
  get(name: string): string | null {
    return this.#m.get(name) ?? null;
  }
  has(name: string): boolean {
    return this.#m.has(name);
  }
  set(name: string, value: string): void {
    this.#m.set(name, value);
  }
  append(name: string, value: string): void {
    const old = this.#m.get(name);
    this.#m.set(name, old === undefined ? value : `${old}, ${value}`);
  }
  delete(name: string): void {
    this.#m.delete(name);
  }
  keys(): Iterable<string> {
    return this.#m.keys();
  }
  forEach(callback: (value: string, name: string) => void): void {
    this.#m.forEach(callback);
  }
}

const DENY_LINE = Buffer.from("x-b3-sampled: 0\r\n", "latin1");
/**
 * The x-request-id line of requests the fast path sends without a span: a version-4 UUID drawn
 * once per process whose last 12 hex digits are replaced by a sequence number (`requestSeqFor`),
 * written straight into the head. The regular path's `crypto.randomUUID()` made as a string, plus
 * its line, cost 0.3-0.5 µs of the 3.7 µs of user time an unsampled request took (bench/NOTES.md); the
 * ids stay unique (74 random bits per process, then the sequence) and a resend of the same
 * request carries the same id.
 */
const ID_LINE = Buffer.from(`x-request-id: ${crypto.randomUUID()}\r\n`, "latin1");
const HEX = Buffer.from("0123456789abcdef", "latin1");
let requestSeq = 0;

/** For a request sent without a span (`verdict`: its trace decision): the number of the x-request-id it gets, or 0 if it has one. */
export const requestSeqFor = (verdict: number): number => (verdict & TRACE_NO_REQUEST_ID ? ++requestSeq : 0);

/** Upper bound of the bytes `writeUntraced` adds. */
export const UNTRACED_BOUND = DENY_LINE.length + ID_LINE.length;

/**
 * With tracing on and nothing to record: writes the lines the decision `verdict` adds at `pos`
 * (`x-b3-sampled: 0` for a new trace not sampled; an x-request-id numbered `seq` when the
 * request has none); returns the new position.
 */
export function writeUntraced(out: Buffer, pos: number, verdict: number, seq: number): number {
  if ((verdict & 3) === TRACE_DENY) {
    out.set(DENY_LINE, pos);
    pos += DENY_LINE.length;
  }
  if (verdict & TRACE_NO_REQUEST_ID) {
    out.set(ID_LINE, pos);
    pos += ID_LINE.length;
    // The 12 hex digits before "\r\n": 48 bits of the sequence.
    let at = pos - 2;
    for (let k = 0; k < 12; k++) {
      const d = seq % 16;
      out[--at] = HEX[d]!;
      seq = (seq - d) / 16;
    }
  }
  return pos;
}

/**
 * A request to trace (or whose trace context the fast path does not read): the tracer takes it
 * as on the regular path, from a Headers of its trace-related headers; returns the span (if
 * sampled) and the head lines of the trace headers to send (the caller leaves out the
 * originals of TRACE_WRITTEN). `decided`: a new trace the fast path drew as sampled.
 */
export function startTrace(rt: Runtime, list: string[], decided: boolean, ctx: Omit<TraceCtx, "headers" | "req">): { trace: FastTrace | null; lines: string } {
  const h = new TraceHeaders();
  for (let i = 0; i < list.length; i += 2) if (TRACE_READ.has(list[i]!)) h.append(list[i]!, list[i + 1]!);
  const full: TraceCtx = { ...ctx, headers: h, req: { headers: h } };
  const hop = rt.telemetry.begin(full, decided);
  let lines = "";
  h.forEach((v, n) => {
    if (TRACE_WRITTEN.has(n)) lines += `${n}: ${v}\r\n`;
  });
  return { trace: hop ? { hop, ctx: full } : null, lines };
}
