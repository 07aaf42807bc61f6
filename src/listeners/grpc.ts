/**
 * The gRPC listeners (h2c, node:http2: Bun.serve has no HTTP/2). The consumer side takes the
 * app's gRPC calls and names the service by `:authority` (Mesher's authority resolver); the
 * provider side takes other sidecars' calls and hands them to `service.ports.grpc`. Both
 * forward one HTTP/2 stream to one upstream stream: messages stream both ways with
 * backpressure, trailers and status pass through, `grpc-timeout` is enforced here too, and a
 * cancelled call is cancelled upstream. Errors of mesher itself are gRPC statuses in a
 * trailers-only response (`grpc-status`, `grpc-message`, `x-mesher-error`), never HTTP bodies.
 *
 * Handler chains work on fetch Request/Response, which cannot carry HTTP/2 trailers, so gRPC
 * calls take the route -> cluster -> endpoint steps here instead of the chain.
 */
import http2 from "node:http2";
import { balancers, type Balancer } from "../balancers/index.ts";
import { IDENTITY_HEADER } from "../pipeline/build.ts";
import { MeshError, type ErrorCode } from "../pipeline/errors.ts";
import type { Ctx } from "../pipeline/types.ts";
import { isAvailable, makeEndpoint, type Endpoint } from "../upstream/cluster.ts";
import type { ClusterManager } from "../upstream/clusters.ts";
import { splitAddress } from "../upstream/cluster.ts";
import { splitHost } from "../upstream/http.ts";
import { VIA_HEADER, viaContains } from "./handle.ts";
import type { Runtime } from "./runtime.ts";

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = http2.constants;
const END_STREAM = 0x1;

/** gRPC status codes (grpc/doc/statuscodes.md) mesher answers with. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/**
 * MeshError code -> gRPC status. An unknown service is UNIMPLEMENTED, as gRPC's HTTP
 * mapping turns Envoy's "no route" 404 into; no endpoint or a failed connection is UNAVAILABLE,
 * which clients may retry.
 */
const STATUS_OF: Record<ErrorCode, number> = {
  bad_request: GrpcStatus.INVALID_ARGUMENT,
  fault_injected: GrpcStatus.UNAVAILABLE,
  forbidden: GrpcStatus.PERMISSION_DENIED,
  unknown_service: GrpcStatus.UNIMPLEMENTED,
  no_route: GrpcStatus.UNIMPLEMENTED,
  rate_limited: GrpcStatus.RESOURCE_EXHAUSTED,
  internal: GrpcStatus.INTERNAL,
  upstream_connect_failure: GrpcStatus.UNAVAILABLE,
  upstream_reset: GrpcStatus.UNAVAILABLE,
  circuit_open: GrpcStatus.UNAVAILABLE,
  no_healthy_upstream: GrpcStatus.UNAVAILABLE,
  overloaded: GrpcStatus.UNAVAILABLE,
  shutting_down: GrpcStatus.UNAVAILABLE,
  upstream_timeout: GrpcStatus.DEADLINE_EXCEEDED,
  loop_detected: GrpcStatus.INTERNAL,
};

/**
 * gRPC status -> the HTTP status the metrics count it as (the mapping of Google's API design
 * guide), so gRPC calls land in the same success/4xx/5xx series as HTTP ones.
 */
const HTTP_OF: Record<number, number> = { 0: 200, 1: 499, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400, 12: 501, 14: 503, 16: 401 };
export function httpStatusOfGrpc(status: number): number {
  return HTTP_OF[status] ?? 500;
}

export function grpcStatusOf(err: MeshError): number {
  return STATUS_OF[err.code] ?? GrpcStatus.INTERNAL;
}

/** The gRPC error trailers of a MeshError (grpc-message is percent-encoded, per the spec). */
export function grpcErrorTrailers(err: MeshError): Record<string, string> {
  return {
    "grpc-status": String(grpcStatusOf(err)),
    "grpc-message": encodeURIComponent(err.message),
    "x-mesher-error": err.code,
  };
}

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** Parses a grpc-timeout header ("100m", "5S") into ms; undefined when absent or malformed. */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  const m = value ? /^(\d{1,8})([HMSmun])$/.exec(value) : null;
  return m ? Number(m[1]) * UNIT_MS[m[2]!]! : undefined;
}

/** Where one call goes: an endpoint, or the MeshError to answer with. */
export type GrpcRoute = (headers: http2.IncomingHttpHeaders) => Endpoint | MeshError;

const HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "http2-settings"]);

function requestHeaders(h: http2.IncomingHttpHeaders, extra: Record<string, string>): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [k, x] of Object.entries(h)) {
    if (x === undefined || x === null || HOP.has(k) || (k.startsWith(":") && k !== ":method" && k !== ":path" && k !== ":authority")) continue;
    out[k] = x;
  }
  out[":scheme"] = "http";
  return Object.assign(out, extra);
}

function responseHeaders(h: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [k, x] of Object.entries(h)) {
    if (x === undefined || x === null || HOP.has(k) || (k.startsWith(":") && k !== ":status")) continue;
    out[k] = x;
  }
  return out;
}

/** Pooled HTTP/2 sessions to upstream endpoints, one per address. */
class SessionPool {
  readonly #sessions = new Map<string, http2.ClientHttp2Session>();
  get(address: string): http2.ClientHttp2Session {
    let s = this.#sessions.get(address);
    if (s && !s.closed && !s.destroyed) return s;
    s = http2.connect(`http://${address}`);
    const session = s;
    const drop = () => {
      if (this.#sessions.get(address) === session) this.#sessions.delete(address);
    };
    session.on("error", drop); // the streams on it report the error themselves
    session.on("close", drop);
    session.on("goaway", drop);
    this.#sessions.set(address, session);
    return session;
  }
  close(): void {
    for (const s of this.#sessions.values()) s.destroy();
    this.#sessions.clear();
  }
}

/** Forwards one downstream stream to `endpoint`. */
function forward(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  endpoint: Endpoint,
  pool: SessionPool,
  extra: Record<string, string>,
  done: (status: number) => void,
): void {
  let finished = false;
  /** The call's final gRPC status, as the caller sees it. */
  let status: number | undefined;
  const statusOf = (h: http2.IncomingHttpHeaders) => Number(h["grpc-status"] ?? GrpcStatus.UNKNOWN);
  let pendingTrailers: Record<string, string> | undefined;
  let upstreamTrailers: http2.IncomingHttpHeaders | undefined;
  const finish = () => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    endpoint.active--;
    done(status ?? GrpcStatus.UNKNOWN);
  };
  /** Ends the downstream call with mesher's own status. */
  const fail = (err: MeshError) => {
    if (stream.closed || stream.destroyed) return;
    status = grpcStatusOf(err);
    if (!stream.headersSent) {
      stream.respond({ ":status": 200, "content-type": "application/grpc", ...grpcErrorTrailers(err) }, { endStream: true });
    } else {
      pendingTrailers = grpcErrorTrailers(err);
      upstream.unpipe(stream);
      stream.end();
    }
  };

  endpoint.active++;
  let upstream: http2.ClientHttp2Stream;
  try {
    upstream = pool.get(endpoint.address).request(requestHeaders(headers, extra));
  } catch (err) {
    endpoint.active--;
    fail(new MeshError("upstream_connect_failure", `cannot open a stream to ${endpoint.address}: ${(err as Error).message}`));
    done(status ?? GrpcStatus.UNAVAILABLE);
    return;
  }

  const deadline = parseGrpcTimeout(headers["grpc-timeout"] as string | undefined);
  const timer = deadline === undefined ? undefined : setTimeout(() => {
    fail(new MeshError("upstream_timeout", `deadline of ${headers["grpc-timeout"]} exceeded`));
    if (!upstream.closed) upstream.close(NGHTTP2_CANCEL);
  }, deadline);

  stream.pipe(upstream);
  upstream.on("response", (h, flags) => {
    if (stream.closed || stream.destroyed || stream.headersSent) return;
    if (flags & END_STREAM) {
      // Trailers-only response (an error status with no messages).
      status = statusOf(h);
      stream.respond(responseHeaders(h), { endStream: true });
      return;
    }
    stream.respond(responseHeaders(h), { waitForTrailers: true });
    upstream.pipe(stream);
  });
  upstream.on("trailers", (t) => (upstreamTrailers = t));
  stream.on("wantTrailers", () => {
    if (pendingTrailers) return stream.sendTrailers(pendingTrailers);
    if (upstreamTrailers) {
      status = statusOf(upstreamTrailers);
      return stream.sendTrailers(responseHeaders(upstreamTrailers));
    }
    status = GrpcStatus.UNAVAILABLE;
    stream.sendTrailers(grpcErrorTrailers(new MeshError("upstream_reset", `${endpoint.address} ended the call without a status`)));
  });
  upstream.on("error", (err: NodeJS.ErrnoException) => {
    const code = err.code ?? "";
    // Bun reports a refused connection as ERR_HTTP2_STREAM_CANCEL "... (caused by: connect ECONNREFUSED ...)".
    if (code === "ECONNREFUSED" || /ECONNREFUSED/.test(err.message)) {
      fail(new MeshError("upstream_connect_failure", `connection refused by ${endpoint.address}`));
    } else {
      fail(new MeshError("upstream_reset", `call to ${endpoint.address} failed: ${code || err.message}`));
    }
  });
  upstream.on("close", () => {
    // Reset by the upstream (not a normal end): pass the failure on.
    if (upstream.rstCode !== undefined && upstream.rstCode !== NGHTTP2_NO_ERROR && !stream.closed) {
      if (!stream.headersSent) fail(new MeshError("upstream_reset", `${endpoint.address} reset the call (code ${upstream.rstCode})`));
      else if (!pendingTrailers && !upstreamTrailers) {
        status = GrpcStatus.UNAVAILABLE;
        stream.close(upstream.rstCode);
      }
    }
    finish();
  });
  stream.on("close", () => {
    // The caller went away or cancelled: cancel upstream too.
    status ??= GrpcStatus.CANCELLED;
    if (!upstream.closed) upstream.close(NGHTTP2_CANCEL);
    finish();
  });
  stream.on("error", () => {}); // a reset by the caller; "close" handles it
}

export interface GrpcListener {
  readonly address: string;
  /** Stops accepting; graceful lets open calls finish (GOAWAY), else they are reset. */
  close(graceful: boolean): Promise<void>;
}

/** Opens an h2c listener that forwards every call to the endpoint `route` picks. */
export function serveGrpc(address: string, rt: Runtime, side: "consumer" | "provider", route: GrpcRoute): GrpcListener {
  const pool = new SessionPool();
  const sessions = new Set<http2.ServerHttp2Session>();
  const mark = `${rt.id}/grpc-${side}`;
  const server = http2.createServer();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
    s.on("error", () => {});
  });
  server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    const start = performance.now();
    const self = rt.pipeline.config.service;
    const service = side === "provider" ? self.name : splitHost((headers[":authority"] as string | undefined) ?? "")[0].toLowerCase();
    const record = (status: number, version: string) =>
      rt.metrics.record(service, self.app, version, httpStatusOfGrpc(status), (performance.now() - start) / 1000);
    const via = headers[VIA_HEADER] as string | undefined;
    let picked: Endpoint | MeshError;
    if (viaContains(via ?? null, mark)) picked = new MeshError("loop_detected", "the call came back to the sidecar that forwarded it");
    else picked = route(headers);
    if (picked instanceof MeshError) {
      stream.on("error", () => {});
      stream.respond({ ":status": 200, "content-type": "application/grpc", ...grpcErrorTrailers(picked) }, { endStream: true });
      record(grpcStatusOf(picked), "");
      return;
    }
    const extra: Record<string, string> = {};
    if (side === "consumer") {
      extra[VIA_HEADER] = via ? `${via}, ${mark}` : mark;
      extra[IDENTITY_HEADER] = rt.pipeline.identity;
    }
    rt.inflight++;
    const version = side === "provider" ? self.version : (picked.tags.version ?? "");
    forward(stream, headers, picked, pool, extra, (status) => {
      rt.inflight--;
      record(status, version);
    });
  });
  const { host, port } = splitAddress(address);
  server.listen(port, host);
  const bound = server.address();
  if (!bound || typeof bound === "string") {
    server.close();
    throw new Error(`cannot listen on ${address} (gRPC ${side})`);
  }
  const h = bound.address.includes(":") ? `[${bound.address}]` : bound.address;
  return {
    address: `${h}:${bound.port}`,
    close(graceful) {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) (graceful ? s.close() : s.destroy());
        if (!graceful) pool.close();
      }).finally(() => pool.close());
    },
  };
}

/** Consumer side: `:authority` names the service; its `grpc:<name>` cluster holds its endpoints. */
export function consumerGrpcRoute(clusters: ClusterManager): GrpcRoute {
  const perCluster = new Map<string, Balancer>();
  const noCtx = {} as Ctx; // the round-robin balancer reads nothing from the request
  return (headers) => {
    const authority = (headers[":authority"] as string | undefined) ?? "";
    const service = splitHost(authority)[0].toLowerCase();
    if (!service) return new MeshError("bad_request", "no :authority: call the service by name (grpc.default_authority)");
    const cluster = clusters.get(grpcClusterName(service));
    if (!cluster) {
      return clusters.get(service)
        ? new MeshError("no_healthy_upstream", `service "${service}" has no gRPC endpoints (services.${service}.grpcEndpoints)`)
        : new MeshError("unknown_service", `no service named "${service}" is known to this sidecar`);
    }
    let lb = perCluster.get(cluster.name);
    if (!lb) perCluster.set(cluster.name, (lb = balancers.roundRobin!()));
    const now = Date.now();
    const endpoint = lb.pick(cluster.endpoints.filter((e) => isAvailable(e, now)), noCtx);
    return endpoint ?? new MeshError("no_healthy_upstream", `service "${service}" has no available gRPC endpoint`);
  };
}

/** Provider side: the local app's gRPC port. */
export function providerGrpcRoute(rt: Runtime): GrpcRoute {
  const locals = new Map<number, Endpoint>();
  return () => {
    const port = rt.pipeline.config.service.ports.grpc;
    if (port === undefined) {
      return new MeshError("no_healthy_upstream", `no gRPC port for ${rt.pipeline.config.service.name}: set service.ports.grpc`);
    }
    let e = locals.get(port);
    if (!e) locals.set(port, (e = makeEndpoint(`127.0.0.1:${port}`, { origin: "local" })));
    return e;
  };
}

/** Name of the cluster holding a service's gRPC endpoints (":" cannot occur in service names). */
export function grpcClusterName(service: string): string {
  return `grpc:${service}`;
}
