/**
 * One span per sidecar hop: a client span when the app calls out (consumer), a server span
 * when a call comes in (provider). The sampling decision is taken before anything is built, so
 * an unsampled request costs a few header lookups and nothing else (no span, no id, no
 * parsing unless a trace header is present). A finished hop becomes a record of its span
 * (OpenTelemetry) and/or a SkyWalking segment (one per hop, ids shared with the span); both
 * are exported in batches (exportThread.ts).
 */
import { SpanKind, type Attributes } from "@opentelemetry/api";
import type { MeshError } from "../../pipeline/errors.ts";
import type { Ctx } from "../../pipeline/types.ts";
import type { TracingOptions } from "../schema.ts";
import { hopSegment, type SegmentObject } from "../skywalking/segment.ts";
import { startExports, type SpanRecord, type SpanSink } from "./exportThread.ts";
import { extract, inject, injectDeny, type HeaderCarrier, type Incoming, type SwParent } from "./propagation.ts";

/**
 * What a hop's span reads of its request: the Ctx on the regular path; the fast path
 * (listeners/fastdirect.ts) fills one of its own. `headers` are the headers going upstream
 * (trace context is written there), `req.headers` those the request came with.
 */
export type TraceCtx = Pick<
  Ctx,
  "direction" | "method" | "path" | "service" | "port" | "clientAddress" | "source" | "route" | "cluster" | "endpoint" | "attempts"
> & { readonly headers: HeaderCarrier; readonly req: { readonly headers: HeaderCarrier } };

/** What a hop's span reads of the response. */
export interface TraceResult {
  readonly status: number;
}

/** Who this sidecar is, as spans and segments name it. */
export interface TraceIdentity {
  service: string;
  version: string;
  app: string;
  /** Unique per process (SkyWalking's service instance, OTel's service.instance.id). */
  instance: string;
}

/** A span in flight for one hop. */
export interface Hop {
  readonly kind: "client" | "server";
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly incoming?: Incoming;
  /** SkyWalking's trace id (an agent's own id when the request came with one). */
  readonly swTraceId: string;
  /** SkyWalking operation name ("GET:/items"). */
  readonly operation: string;
  /** The address the caller dialled, as sw8 and the exit span name it. */
  peer: string;
  /** The service at the start; an edge hop learns its service from the ingress rule later. */
  readonly service: string;
  /** The span was named by x-envoy-decorator-operation. */
  readonly decorated: boolean;
  readonly startEpochMs: number;
  /** OpenTelemetry is on: what the span starts with (it is made when the hop ends). */
  readonly otel?: { name: string; attributes: Attributes; startTime: number };
}

/** The remote parent of a span record (plain values: it may cross to the exporter thread). */
function parentOf(incoming: Incoming | undefined): SpanRecord["parent"] {
  if (!incoming?.traceId || !incoming.spanId) return undefined;
  return { traceId: incoming.traceId, spanId: incoming.spanId, traceState: incoming.traceState?.serialize() };
}

/** Wall-clock milliseconds with performance.now()'s resolution (what the SDK uses for its own times). */
const nowMs = () => performance.timeOrigin + performance.now();

/**
 * A trace or span id: `bytes` random bytes as lower-case hex, never all zeros (invalid in W3C
 * and B3). Math.random, as the OpenTelemetry SDK's RandomIdGenerator: ids must be unique, not
 * secret, and this makes no typed array per id (a sampled request makes two).
 */
function randomHex(bytes: number): string {
  let out = "";
  let any = 0;
  for (let i = 0; i < bytes; i += 4) {
    const n = (Math.random() * 0x100000000) >>> 0;
    any |= n;
    out += n.toString(16).padStart(8, "0");
  }
  return any ? out : randomHex(bytes);
}

/** Called with the number of spans (or segments) an exporter had to drop. */
export type DropCounter = (exporter: "otlp" | "skywalking", n: number) => void;

export class HopTracer {
  readonly #ratio: number;
  readonly #id: TraceIdentity;
  /** Where finished hops are exported (OTLP and/or SkyWalking); none when tracing only propagates. */
  readonly #exports?: SpanSink;
  readonly #otlp: boolean;
  readonly #sw: boolean;
  /** Finished hops not yet handed to the exporters (one batch per drain). */
  #spans: SpanRecord[] = [];
  #segments: SegmentObject[] = [];
  #timer: Timer | undefined;
  readonly #drainMs: number;
  readonly #maxPending: number;
  readonly #dropped: DropCounter;

  constructor(options: TracingOptions, identity: TraceIdentity, dropped: DropCounter) {
    this.#ratio = options.sampler;
    this.#id = identity;
    this.#drainMs = Math.max(10, Math.min(500, options.flushInterval / 2));
    this.#maxPending = options.maxQueue;
    this.#dropped = dropped;
    this.#otlp = options.otlp !== undefined;
    this.#sw = options.skywalking !== undefined;
    if (this.#otlp || this.#sw) {
      this.#exports = startExports(
        { identity, flushInterval: options.flushInterval, maxQueue: options.maxQueue, otlp: options.otlp, skywalking: options.skywalking },
        dropped,
      );
    }
  }

  /**
   * Starts the hop's span and writes its context onto `ctx.headers` (which go upstream).
   * Undefined when the request is not sampled. `decided`: the fast path drew the new trace's
   * sample already (fasttrace.ts).
   */
  begin(ctx: TraceCtx, decided = false): Hop | undefined {
    const h = ctx.headers;
    const incoming = extract(h);
    let sampled = incoming?.sampled;
    if (decided || h.has("x-envoy-force-trace") || h.has("x-client-trace-id")) sampled = true;
    else if (sampled === undefined) sampled = this.#ratio >= 1 || Math.random() < this.#ratio;
    if (!sampled) {
      if (!incoming) injectDeny(h); // so the next hops keep this decision
      return undefined;
    }

    const kind = ctx.direction === "provider" ? "server" : "client";
    const q = ctx.path.indexOf("?");
    const path = q < 0 ? ctx.path : ctx.path.slice(0, q);
    const peer = kind === "client" ? (ctx.port ? `${ctx.service}:${ctx.port}` : ctx.service) : (ctx.req.headers.get("host") ?? "");
    const traceId = incoming?.traceId ?? randomHex(16);
    const spanId = randomHex(8);
    const otel = !this.#otlp ? undefined : {
      // Envoy's header for naming the operation; else "{method} {service}".
      name: h.get("x-envoy-decorator-operation") ?? `${ctx.method} ${ctx.service}`,
      attributes: startAttributes(ctx, path, kind),
      startTime: nowMs(),
    };
    const hop: Hop = {
      kind,
      traceId,
      spanId,
      parentSpanId: incoming?.spanId,
      incoming,
      swTraceId: incoming?.sw?.traceId ?? traceId,
      operation: `${ctx.method}:${path}`,
      peer,
      service: ctx.service,
      decorated: h.has("x-envoy-decorator-operation"),
      startEpochMs: Date.now(),
      otel,
    };
    let sw: SwParent | undefined;
    if (this.#sw) {
      sw = {
        sampled: true,
        traceId: hop.swTraceId,
        segmentId: spanId,
        spanId: 0,
        service: this.#id.service,
        instance: this.#id.instance,
        // The operation of the first entry span of the trace's segment in this service.
        endpoint: kind === "server" ? hop.operation : (incoming?.sw?.endpoint ?? hop.operation),
        peer: kind === "client" ? peer : (ctx.endpoint?.address ?? ""),
      };
    }
    inject(h, { traceId, spanId, parentSpanId: incoming?.spanId, debug: incoming?.debug, traceState: incoming?.traceState, sw }, incoming);
    return hop;
  }

  /** Ends the hop's span with what the request came to. */
  end(hop: Hop, ctx: TraceCtx, res: TraceResult, error: MeshError | undefined): void {
    const failed = error !== undefined || res.status >= (hop.kind === "server" ? 500 : 400);
    // An edge hop starts before its ingress rule picks the service: name what it reached.
    const retargeted = hop.kind === "client" && ctx.service !== hop.service;
    if (retargeted) hop.peer = ctx.port ? `${ctx.service}:${ctx.port}` : ctx.service;
    if (hop.otel) {
      const attributes = hop.otel.attributes;
      if (retargeted) {
        attributes["server.address"] = ctx.service;
        if (ctx.port) attributes["server.port"] = Number(ctx.port);
      }
      Object.assign(attributes, endAttributes(ctx, res, error));
      this.#queue(this.#spans, "otlp", {
        name: retargeted && !hop.decorated ? `${ctx.method} ${ctx.service}` : hop.otel.name,
        kind: hop.kind === "server" ? SpanKind.SERVER : SpanKind.CLIENT,
        attributes,
        startTime: hop.otel.startTime,
        endTime: nowMs(),
        failed,
        message: error?.message,
        traceId: hop.traceId,
        spanId: hop.spanId,
        parent: parentOf(hop.incoming),
      });
    }
    if (this.#sw) this.#queue(this.#segments, "skywalking", hopSegment(hop, ctx, res, error, failed, this.#id));
  }

  /** Queues a finished hop's span or segment (bounded); it goes with the next batch. */
  #queue<T>(list: T[], exporter: "otlp" | "skywalking", item: T): void {
    if (list.length >= this.#maxPending) return this.#dropped(exporter, 1);
    list.push(item);
    if (!this.#timer) {
      this.#timer = setTimeout(() => this.#drain(), this.#drainMs);
      this.#timer.unref();
    }
  }

  /** Hands the finished hops to the exporters, in one batch. */
  #drain(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const spans = this.#spans;
    const segments = this.#segments;
    this.#spans = [];
    this.#segments = [];
    if (spans.length || segments.length) this.#exports?.send(spans, segments);
  }

  /** Sends what is buffered and closes the exporters; never rejects. */
  async shutdown(): Promise<void> {
    this.#drain();
    await this.#exports?.shutdown();
  }

  /** Sends what is buffered now (tests, stop); never rejects. */
  async flush(): Promise<void> {
    this.#drain();
    await this.#exports?.flush();
  }
}

function startAttributes(ctx: TraceCtx, path: string, kind: "client" | "server"): Attributes {
  const q = ctx.path.indexOf("?");
  const a: Attributes = {
    "http.request.method": ctx.method,
    "url.path": path,
    "url.scheme": "http",
    "server.address": ctx.service,
    "mesher.direction": ctx.direction,
  };
  if (q >= 0) a["url.query"] = ctx.path.slice(q + 1);
  if (ctx.port) a["server.port"] = Number(ctx.port);
  const ua = ctx.req.headers.get("user-agent");
  if (ua) a["user_agent.original"] = ua;
  const rid = ctx.headers.get("x-request-id");
  if (rid) a["mesher.request_id"] = rid;
  const clientTraceId = ctx.headers.get("x-client-trace-id");
  if (clientTraceId) a["mesher.client_trace_id"] = clientTraceId;
  if (kind === "server") {
    a["client.address"] = ctx.clientAddress;
    a["network.peer.address"] = ctx.clientAddress;
    if (ctx.source) a["mesher.source_service"] = ctx.source.name;
  }
  return a;
}

function endAttributes(ctx: TraceCtx, res: TraceResult, error: MeshError | undefined): Attributes {
  const a: Attributes = { "http.response.status_code": res.status };
  if (ctx.route) a["mesher.route"] = ctx.route.name;
  if (ctx.cluster) a["mesher.cluster"] = ctx.cluster.name;
  if (ctx.endpoint) {
    a["mesher.endpoint"] = ctx.endpoint.address;
    if (ctx.direction !== "provider") {
      a["network.peer.address"] = ctx.endpoint.host;
      a["network.peer.port"] = ctx.endpoint.port;
    }
  }
  a["mesher.attempts"] = ctx.attempts;
  a["mesher.retries"] = Math.max(0, ctx.attempts - 1);
  if (ctx.attempts > 1) a["http.request.resend_count"] = ctx.attempts - 1;
  if (error) {
    a["mesher.error_code"] = error.code;
    a["error.type"] = error.code;
  } else if (res.status >= 500) a["error.type"] = String(res.status);
  return a;
}
