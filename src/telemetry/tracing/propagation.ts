/**
 * Trace context in and out of HTTP headers: W3C `traceparent`/`tracestate` and B3 (multi
 * `x-b3-*` and single `b3`) through OpenTelemetry's own propagators; SkyWalking `sw8` and
 * Envoy's LightStep `x-ot-span-context` by hand (neither has a maintained JS library outside a
 * whole agent). `sw8-correlation`, `x-request-id`, `x-client-trace-id` and `x-trace-service`
 * are never touched here.
 */
import { createHash } from "node:crypto";
import { ROOT_CONTEXT, trace, TraceFlags, type TextMapGetter, type TextMapSetter, type TraceState } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { B3InjectEncoding, B3Propagator } from "@opentelemetry/propagator-b3";

/** A parent as SkyWalking's sw8 carries it. */
export interface SwParent {
  sampled: boolean;
  traceId: string;
  segmentId: string;
  spanId: number;
  service: string;
  instance: string;
  /** Operation name of the first entry span of the parent segment. */
  endpoint: string;
  /** The address the caller dialled. */
  peer: string;
}

/** What a request says about its place in a trace. */
export interface Incoming {
  /** 32 lower-hex; absent when the request only carries a decision ("b3: 0"). */
  traceId?: string;
  /** 16 lower-hex: the caller's span. */
  spanId?: string;
  /** The caller's decision; undefined = the caller deferred it to us. */
  sampled?: boolean;
  debug?: boolean;
  traceState?: TraceState;
  /** Decoded sw8, kept whole for SkyWalking's segment references. */
  sw?: SwParent;
  /** Formats the request carried, so we rewrite each of them and leave none stale. */
  b3Single: boolean;
  otSpanContext: boolean;
}

/** The context this hop's span passes on. */
export interface Outgoing {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  debug?: boolean;
  traceState?: TraceState;
  /** sw8 to send, when SkyWalking is on or the request carried sw8. */
  sw?: SwParent;
}

/**
 * The headers trace context is read from and written to: a request's Fetch Headers on the
 * regular path, the fast path's own map of a request's trace headers (listeners/fasttrace.ts).
 */
export interface HeaderCarrier {
  get(name: string): string | null;
  has(name: string): boolean;
  set(name: string, value: string): void;
  delete(name: string): void;
  keys(): Iterable<string>;
  forEach(callback: (value: string, name: string) => void): void;
}

const getter: TextMapGetter<HeaderCarrier> = {
  get: (h, key) => h.get(key) ?? undefined,
  keys: (h) => [...h.keys()],
};
const setter: TextMapSetter<HeaderCarrier> = { set: (h, key, value) => h.set(key, value) };

const w3c = new W3CTraceContextPropagator();
const b3 = new B3Propagator(); // extracts both forms (single wins, as the B3 spec says)
const b3Multi = new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER });
const b3Single = new B3Propagator({ injectEncoding: B3InjectEncoding.SINGLE_HEADER });

/** Headers whose presence means "there is a trace context to read". Checked before any parsing. */
const CONTEXT_HEADERS = ["traceparent", "b3", "x-b3-traceid", "x-b3-sampled", "sw8", "x-ot-span-context"];

/** True when the request carries any trace context: the cheap check on the unsampled path. */
export function hasContext(h: HeaderCarrier): boolean {
  for (const name of CONTEXT_HEADERS) if (h.has(name)) return true;
  return false;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

/** A stable 32- or 16-hex id derived from a foreign id (a SkyWalking agent's trace id). */
function hexOf(text: string, length: 16 | 32): string {
  return createHash("sha256").update(text).digest("hex").slice(0, length);
}

/** Reads the trace context of a request; undefined when it carries none. */
export function extract(h: HeaderCarrier): Incoming | undefined {
  if (!hasContext(h)) return undefined;
  const sw = h.has("sw8") ? parseSw8(h.get("sw8")!) : undefined;
  const out: Incoming = { sw, b3Single: h.has("b3"), otSpanContext: h.has("x-ot-span-context") };

  let ctx = h.has("traceparent") ? w3c.extract(ROOT_CONTEXT, h, getter) : ROOT_CONTEXT;
  let sc = trace.getSpanContext(ctx);
  if (!sc && (out.b3Single || h.has("x-b3-traceid"))) {
    ctx = b3.extract(ROOT_CONTEXT, h, getter);
    sc = trace.getSpanContext(ctx);
    if (sc) {
      out.debug = h.get("x-b3-flags") === "1" || h.get("b3")?.split("-")[2] === "d";
      // OpenTelemetry reads a missing sampling state as "no"; B3 says "the caller deferred".
      const single = h.get("b3");
      const deferred = single ? single.split("-").length === 2 : !h.has("x-b3-sampled") && !out.debug;
      out.sampled = deferred ? undefined : (sc.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED;
    }
  } else if (sc) {
    out.sampled = (sc.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED;
    out.traceState = sc.traceState;
  }
  if (sc) {
    out.traceId = sc.traceId;
    out.spanId = sc.spanId;
    return out;
  }
  if (sw) {
    out.traceId = HEX32.test(sw.traceId) ? sw.traceId : hexOf(sw.traceId, 32);
    out.spanId = HEX16.test(sw.segmentId) && sw.spanId === 0 ? sw.segmentId : hexOf(`${sw.segmentId}/${sw.spanId}`, 16);
    out.sampled = sw.sampled;
    return out;
  }
  const ot = h.get("x-ot-span-context");
  const parsed = ot ? parseOtSpanContext(ot) : undefined;
  if (parsed) return { ...out, ...parsed };
  // A bare decision: "b3: 0" or "x-b3-sampled: 0" with no ids is a deny (B3 spec).
  if (h.get("b3") === "0" || (h.get("x-b3-sampled") === "0" && !h.has("x-b3-traceid"))) out.sampled = false;
  else if (out.sampled === undefined && h.get("x-b3-sampled") === "1") out.sampled = true;
  return out;
}

/** Writes this hop's context onto the outgoing headers, in every format the next hop may read. */
export function inject(h: HeaderCarrier, o: Outgoing, incoming: Incoming | undefined): void {
  const sc = { traceId: o.traceId, spanId: o.spanId, traceFlags: TraceFlags.SAMPLED, isRemote: false, traceState: o.traceState };
  const ctx = trace.setSpanContext(ROOT_CONTEXT, sc);
  w3c.inject(ctx, h, setter);
  if (!o.traceState) h.delete("tracestate");
  b3Multi.inject(ctx, h, setter);
  if (o.debug) {
    h.set("x-b3-flags", "1");
    h.delete("x-b3-sampled");
  }
  if (o.parentSpanId) h.set("x-b3-parentspanid", o.parentSpanId);
  else h.delete("x-b3-parentspanid");
  if (incoming?.b3Single) b3Single.inject(ctx, h, setter);
  if (incoming?.otSpanContext) h.set("x-ot-span-context", formatOtSpanContext(o.traceId, o.spanId));
  if (o.sw) h.set("sw8", formatSw8(o.sw));
}

/** Marks an unsampled new trace so the next hops do not start one of their own. */
export function injectDeny(h: HeaderCarrier): void {
  h.set("x-b3-sampled", "0");
}

// --- SkyWalking sw8 (cross-process propagation headers protocol v3) ---

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const unb64 = (s: string) => Buffer.from(s, "base64").toString("utf8");

/** Parses `sample-traceId-segmentId-spanId-service-instance-endpoint-peer`; undefined when malformed. */
export function parseSw8(value: string): SwParent | undefined {
  const f = value.trim().split("-");
  if (f.length !== 8 || (f[0] !== "0" && f[0] !== "1") || !/^\d+$/.test(f[3]!)) return undefined;
  try {
    const traceId = unb64(f[1]!);
    const segmentId = unb64(f[2]!);
    if (!traceId || !segmentId) return undefined;
    return {
      sampled: f[0] === "1",
      traceId,
      segmentId,
      spanId: Number(f[3]),
      service: unb64(f[4]!),
      instance: unb64(f[5]!),
      endpoint: unb64(f[6]!),
      peer: unb64(f[7]!),
    };
  } catch {
    return undefined;
  }
}

/** Standard base64 (never URL-safe: its alphabet holds "-", the field separator). */
export function formatSw8(p: SwParent): string {
  return [p.sampled ? "1" : "0", b64(p.traceId), b64(p.segmentId), String(p.spanId), b64(p.service), b64(p.instance), b64(p.endpoint), b64(p.peer)].join("-");
}

// --- Envoy's x-ot-span-context: hex of LightStep's BinaryCarrier protobuf ---
// BinaryCarrier { BasicTracerCarrier basic_ctx = 2; } BasicTracerCarrier { fixed64 trace_id = 1;
// fixed64 span_id = 2; bool sampled = 3; map<string,string> baggage_items = 4; }
// The ids are 64-bit: a 128-bit trace id travels as its low half (as B3 does).

function readVarint(b: Uint8Array, at: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (;;) {
    if (at >= b.length || shift > 28) throw new Error("bad varint");
    const byte = b[at++]!;
    value |= (byte & 0x7f) << shift;
    if (!(byte & 0x80)) return [value >>> 0, at];
    shift += 7;
  }
}

function fixed64Hex(b: Uint8Array, at: number): string {
  let hex = "";
  for (let i = 7; i >= 0; i--) hex += b[at + i]!.toString(16).padStart(2, "0");
  return hex;
}

/** Parses the hex-encoded carrier; undefined when it is not one. */
export function parseOtSpanContext(value: string): { traceId: string; spanId: string; sampled: boolean } | undefined {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(value)) return undefined;
  const b = Buffer.from(value, "hex");
  try {
    let at = 0;
    while (at < b.length) {
      const [tag, next] = readVarint(b, at);
      at = next;
      if (tag >> 3 === 2 && (tag & 7) === 2) {
        const [len, start] = readVarint(b, at);
        const end = start + len;
        let traceId = "";
        let spanId = "";
        let sampled = true;
        let p = start;
        while (p < end) {
          const [t, q] = readVarint(b, p);
          p = q;
          const field = t >> 3;
          const wire = t & 7;
          if (wire === 1) {
            if (field === 1) traceId = fixed64Hex(b, p);
            if (field === 2) spanId = fixed64Hex(b, p);
            p += 8;
          } else if (wire === 0) {
            const [x, r] = readVarint(b, p);
            if (field === 3) sampled = x !== 0;
            p = r;
          } else if (wire === 2) {
            const [l, r] = readVarint(b, p);
            p = r + l;
          } else return undefined;
        }
        if (!/[1-9a-f]/.test(traceId) || !/[1-9a-f]/.test(spanId)) return undefined;
        return { traceId: traceId.padStart(32, "0"), spanId, sampled };
      }
      const wire = tag & 7;
      if (wire === 2) {
        const [len, start] = readVarint(b, at);
        at = start + len;
      } else if (wire === 0) at = readVarint(b, at)[1];
      else if (wire === 1) at += 8;
      else return undefined;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** Hex-encoded carrier for a span (sampled, no baggage). */
export function formatOtSpanContext(traceId: string, spanId: string): string {
  const le = (hex: string) => Buffer.from(hex.padStart(16, "0"), "hex").reverse().toString("hex");
  const inner = `09${le(traceId.slice(-16))}11${le(spanId)}1801`;
  return `12${(inner.length / 2).toString(16).padStart(2, "0")}${inner}`;
}
