/**
 * A SkyWalking segment for one sidecar hop (skywalking.v3.SegmentObject, plain JS in
 * proto-loader's field names). Every segment mesher makes has exactly one span (id 0) and its
 * id is the hop's span id, so a parent can be named from W3C or B3 ids alone when no sw8
 * came in:
 * - provider hop: an Entry span, with a CrossProcess reference to the caller's segment;
 * - consumer hop: an Exit span (peer = the service as the app named it), with a CrossThread
 *   reference to the provider hop the app is serving (same service, same instance).
 */
import type { MeshError } from "../../pipeline/errors.ts";
import type { Hop, TraceCtx, TraceIdentity, TraceResult } from "../tracing/tracer.ts";

/** Component ids (skywalking component-libraries.yml) as Mesher used them: 49 HTTP server, 2 HTTP client. */
const COMPONENT_HTTP_SERVER = 49;
const COMPONENT_HTTP_CLIENT = 2;
const SPAN_LAYER_HTTP = 3;
const ENTRY = 0;
const EXIT = 1;
const CROSS_PROCESS = 0;
const CROSS_THREAD = 1;

export interface KeyValue {
  key: string;
  value: string;
}

export interface SegmentReference {
  refType: number;
  traceId: string;
  parentTraceSegmentId: string;
  parentSpanId: number;
  parentService: string;
  parentServiceInstance: string;
  parentEndpoint: string;
  networkAddressUsedAtPeer: string;
}

export interface SpanObject {
  spanId: number;
  parentSpanId: number;
  startTime: number;
  endTime: number;
  refs: SegmentReference[];
  operationName: string;
  peer: string;
  spanType: number;
  spanLayer: number;
  componentId: number;
  isError: boolean;
  tags: KeyValue[];
  skipAnalysis: boolean;
}

export interface SegmentObject {
  traceId: string;
  traceSegmentId: string;
  spans: SpanObject[];
  service: string;
  serviceInstance: string;
  isSizeLimited: boolean;
}

function reference(hop: Hop, ctx: TraceCtx, self: TraceIdentity): SegmentReference | undefined {
  const inc = hop.incoming;
  if (!inc?.spanId) return undefined;
  const sw = inc.sw;
  // The consumer hop continues, in the same service and instance, what the provider hop began;
  // an sw8 from another service (an app with its own SkyWalking agent) crosses processes.
  const refType = hop.kind === "server" || (sw && sw.service !== self.service) ? CROSS_PROCESS : CROSS_THREAD;
  if (sw) {
    return {
      refType,
      traceId: sw.traceId,
      parentTraceSegmentId: sw.segmentId,
      parentSpanId: sw.spanId,
      parentService: sw.service,
      parentServiceInstance: sw.instance,
      parentEndpoint: sw.endpoint,
      networkAddressUsedAtPeer: sw.peer,
    };
  }
  // Only W3C/B3 came in: the parent is another mesher hop (a one-span segment named by its span id).
  const server = hop.kind === "server";
  return {
    refType,
    traceId: hop.swTraceId,
    parentTraceSegmentId: inc.spanId,
    parentSpanId: 0,
    parentService: server ? (ctx.source?.name ?? "-") : self.service,
    parentServiceInstance: server ? "-" : self.instance,
    parentEndpoint: "-",
    networkAddressUsedAtPeer: server ? (ctx.req.headers.get("host") ?? "-") : "-",
  };
}

export function hopSegment(hop: Hop, ctx: TraceCtx, res: TraceResult, error: MeshError | undefined, failed: boolean, self: TraceIdentity): SegmentObject {
  const server = hop.kind === "server";
  const tags: KeyValue[] = [
    { key: "http.method", value: ctx.method },
    { key: "url", value: `http://${hop.peer || ctx.service}${ctx.path}` },
    { key: "http.status_code", value: String(res.status) },
  ];
  if (ctx.route) tags.push({ key: "mesher.route", value: ctx.route.name });
  if (ctx.cluster) tags.push({ key: "mesher.cluster", value: ctx.cluster.name });
  if (ctx.endpoint) tags.push({ key: "mesher.endpoint", value: ctx.endpoint.address });
  if (ctx.attempts > 1) tags.push({ key: "mesher.retries", value: String(ctx.attempts - 1) });
  if (error) tags.push({ key: "mesher.error_code", value: error.code });
  const ref = reference(hop, ctx, self);
  return {
    traceId: hop.swTraceId,
    traceSegmentId: hop.spanId,
    service: self.service,
    serviceInstance: self.instance,
    isSizeLimited: false,
    spans: [
      {
        spanId: 0,
        parentSpanId: -1,
        startTime: hop.startEpochMs,
        endTime: Date.now(),
        refs: ref ? [ref] : [],
        operationName: hop.operation,
        peer: server ? ctx.clientAddress : hop.peer,
        spanType: server ? ENTRY : EXIT,
        spanLayer: SPAN_LAYER_HTTP,
        componentId: server ? COMPONENT_HTTP_SERVER : COMPONENT_HTTP_CLIENT,
        isError: failed,
        tags,
        skipAnalysis: false,
      },
    ],
  };
}
