/**
 * The gRPC listeners (h2c or TLS, node:http2: Bun.serve has no HTTP/2). The consumer side takes the
 * app's gRPC calls and names the service by `:authority` (Mesher's authority resolver); the
 * provider side takes other sidecars' calls and hands them to `service.ports.grpc`.
 *
 * Each call runs the side's handler chain like an HTTP request (router, rate limit, fault,
 * breaker, timeout, balancer, outlier detection; provider: rate limit), on a Ctx made from the
 * HTTP/2 request (POST `/pkg.Service/Method`, the metadata as headers), with two changes:
 * the HTTP `transport` is replaced by the gRPC transport (grpcTransport.ts), and `retry` is
 * left out (a streamed call cannot be replayed once its messages went upstream). On the
 * consumer side the route -> cluster step maps the service to its gRPC cluster
 * (`grpc:<name>`). Errors of mesher itself are gRPC statuses (`grpc-status`, `grpc-message`,
 * `x-mesher-error`), never HTTP bodies; calls are recorded by runChain like HTTP requests.
 */
import http2 from "node:http2";
import { DEFAULT_CHAINS } from "../handlers/index.ts";
import { LATEST, latestResolver } from "../handlers/router/latest.ts";
import { withDeadline } from "../handlers/timeout/deadline.ts";
import { IDENTITY_HEADER, instantiate, parseIdentity, type Pipeline } from "../pipeline/build.ts";
import { compose } from "../pipeline/compose.ts";
import { MeshError } from "../pipeline/errors.ts";
import type { Ctx, Handler } from "../pipeline/types.ts";
import { makeEndpoint, splitAddress, type Endpoint } from "../upstream/cluster.ts";
import { upstreamTlsByService, serverTlsOptions } from "../tls/options.ts";
import { onServerTlsChange } from "../tls/reload.ts";
import type { ServerTls } from "../tls/schema.ts";
import type { ClusterManager } from "../upstream/clusters.ts";
import { splitHost } from "../upstream/http.ts";
import { grpcCalls, GrpcCall, grpcErrorResponse, HOP } from "./grpcCall.ts";
import { parseGrpcTimeout } from "./grpcStatus.ts";
import { grpcTransport, SessionPool } from "./grpcTransport.ts";
import { newContext, runChain, VIA_HEADER, viaContains } from "./handle.ts";
import type { Runtime } from "./runtime.ts";

type Side = "consumer" | "provider";
type Chain = (ctx: Ctx) => Promise<void>;

/** Chain entries a gRPC chain leaves out: the HTTP transport (the gRPC one replaces it) and retry. */
const NOT_FOR_GRPC = new Set(["transport", "retry"]);

/** Name of the cluster holding a service's gRPC endpoints (":" cannot occur in service names). */
export function grpcClusterName(service: string): string {
  return `grpc:${service}`;
}

/**
 * After the router: the call goes to the gRPC cluster of the service the route chose. A
 * `version: latest` the router could not resolve (the service has no HTTP endpoints) is
 * resolved on the gRPC cluster.
 */
function grpcCluster(clusters: ClusterManager): Handler {
  const latest = latestResolver();
  return async function grpcCluster(ctx, next) {
    ctx.service = clusters.canonicalName(ctx.service) ?? ctx.service;
    const cluster = clusters.get(grpcClusterName(ctx.service));
    if (!cluster) {
      throw clusters.get(ctx.service)
        ? new MeshError("no_healthy_upstream", `service "${ctx.service}" has no gRPC endpoints (services.${ctx.service}.grpcEndpoints)`)
        : new MeshError("unknown_service", `no service named "${ctx.service}" is known to this sidecar`);
    }
    ctx.cluster = cluster;
    const tags = ctx.route?.tags;
    if (tags?.version === LATEST) ctx.route!.tags = { ...tags, version: latest(cluster) };
    return next();
  };
}

/**
 * The gRPC chain of one side of a pipeline: the configured chain without `transport` and
 * `retry`, the gRPC cluster step after the router (consumer), the gRPC transport last.
 */
export function buildGrpcChain(pipeline: Pipeline, clusters: ClusterManager, side: Side, terminal: Handler): Chain {
  const config = pipeline.config;
  const entries = (config.chains[side] ?? DEFAULT_CHAINS[side]).filter((e) => typeof e !== "string" || !NOT_FOR_GRPC.has(e));
  const make = (list: readonly (string | Handler)[]) => instantiate(config, clusters, side, list, pipeline.extras);
  if (side === "provider") return compose([...make(entries), terminal]);
  const r = entries.indexOf("router");
  return compose([...make(entries.slice(0, r + 1)), grpcCluster(clusters), ...make(entries.slice(r + 1)), terminal]);
}

/** A chain that only fails: errors found before the chain still go through runChain (metrics, tracing). */
const failing = (err: MeshError): Chain => async () => {
  throw err;
};

export interface GrpcListener {
  readonly address: string;
  /** Stops accepting; graceful lets open calls finish (GOAWAY), else they are reset. */
  close(graceful: boolean): Promise<void>;
}

/**
 * Opens a listener that runs every call through the side's gRPC chain: h2c, or HTTP/2 over TLS
 * (ALPN h2) with `tls`, whose certificate is swapped in place when its files change.
 */
export function serveGrpc(address: string, rt: Runtime, side: Side, clusters: ClusterManager, tls?: ServerTls): GrpcListener {
  const pool = new SessionPool();
  // Compiled once per pipeline (config load or reload), not per call. The consumer side calls
  // peers over TLS where `services.X.tls` says so; the provider side calls its own app (h2c).
  const chains = new WeakMap<Pipeline, Chain>();
  const chainOf = (p: Pipeline) => {
    let chain = chains.get(p);
    if (!chain) {
      const terminal = grpcTransport(pool, side === "consumer" ? upstreamTlsByService(p.config) : undefined);
      chains.set(p, (chain = buildGrpcChain(p, clusters, side, terminal)));
    }
    return chain;
  };
  chainOf(rt.pipeline);
  const locals = new Map<number, Endpoint>();
  const mark = `${rt.id}/grpc-${side}`;

  async function onCall(stream: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders): Promise<void> {
    stream.on("error", () => {}); // a reset by the caller; "close" handles it
    const pipeline = rt.pipeline;
    const self = pipeline.config.service;
    const authority = String(h[":authority"] ?? "");
    const path = String(h[":path"] ?? "/");
    const headers = new Headers();
    for (const [k, x] of Object.entries(h)) {
      if (x === undefined || k.startsWith(":") || HOP.has(k)) continue;
      if (Array.isArray(x)) for (const item of x) headers.append(k, item);
      else headers.append(k, String(x));
    }
    // The caller going away aborts the call (its Request's signal), unless it already has its status.
    const gone = new AbortController();
    const reqHeaders = new Headers(headers);
    reqHeaders.set("host", authority);
    let req: Request;
    try {
      req = new Request(`http://${authority || "grpc"}${path}`, { method: "POST", headers: reqHeaders, signal: gone.signal });
    } catch {
      req = new Request(`http://grpc${path.startsWith("/") ? path : "/"}`, { method: "POST", headers: reqHeaders, signal: gone.signal });
    }
    const service = side === "provider" ? self.name : splitHost(authority)[0].toLowerCase();
    const clientAddress = stream.session?.socket?.remoteAddress ?? "";
    const ctx = newContext(req, side, clientAddress, headers, path, service);
    ctx.method = String(h[":method"] ?? "POST");
    ctx.protocol = "grpc";
    const call = new GrpcCall(stream, authority);
    grpcCalls.set(ctx, call);
    stream.on("close", () => {
      if (!call.ended) gone.abort(new MeshError("upstream_reset", "the caller cancelled the call"));
    });

    let chain: Chain;
    const via = h[VIA_HEADER] as string | undefined;
    if (viaContains(via ?? null, mark)) chain = failing(new MeshError("loop_detected", "the call came back to the sidecar that forwarded it"));
    else if (side === "consumer") {
      headers.set(VIA_HEADER, via ? `${via}, ${mark}` : mark);
      headers.set(IDENTITY_HEADER, pipeline.identity);
      ctx.source = { name: self.name, version: self.version, app: self.app, tags: self.tags };
      chain = service
        ? chainOf(pipeline)
        : failing(new MeshError("bad_request", "no :authority: call the service by name (grpc.default_authority)"));
    } else {
      headers.delete(VIA_HEADER); // the app's own calls are new calls, not this one
      ctx.source = parseIdentity(headers.get(IDENTITY_HEADER));
      const port = self.ports.grpc;
      if (port === undefined) {
        chain = failing(new MeshError("no_healthy_upstream", `no gRPC port for ${self.name}: set service.ports.grpc`));
      } else {
        let local = locals.get(port);
        if (!local) locals.set(port, (local = makeEndpoint(`127.0.0.1:${port}`, { origin: "local" })));
        ctx.endpoint = local;
        chain = chainOf(pipeline);
      }
    }
    // The caller's deadline, enforced here too: when it passes, the upstream call is cancelled.
    const timeout = h["grpc-timeout"] as string | undefined;
    const ms = parseGrpcTimeout(timeout);
    const release = ms === undefined ? undefined : withDeadline(ctx, ms, `deadline (grpc-timeout ${timeout})`);
    try {
      call.answer(await runChain(rt, ctx, chain, grpcErrorResponse));
    } finally {
      release?.();
    }
  }

  const sessions = new Set<http2.ServerHttp2Session>();
  const server = tls ? http2.createSecureServer({ ...serverTlsOptions(tls), ALPNProtocols: ["h2"] }) : http2.createServer();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
    s.on("error", () => {});
  });
  server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    onCall(stream, headers).catch((err: unknown) => {
      console.error("mesher: gRPC call failed", err);
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
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
  let unwatch: (() => void) | undefined;
  if (tls) {
    const secure = server as http2.Http2SecureServer;
    secure.on("tlsClientError", () => {}); // a caller without a valid certificate: its own problem
    unwatch = onServerTlsChange(tls, `${h}:${bound.port} (gRPC ${side})`, (o) => secure.setSecureContext(o));
  }
  return {
    address: `${h}:${bound.port}`,
    close(graceful) {
      unwatch?.();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) (graceful ? s.close() : s.destroy());
        if (!graceful) pool.close();
      }).finally(() => pool.close());
    },
  };
}
