/**
 * The terminal step of the gRPC chains, in place of the HTTP `transport`: opens one HTTP/2
 * stream to `ctx.endpoint` (node:http2, pooled sessions) and pipes the call both ways with
 * backpressure; headers, messages and trailers pass through as they are. Handler chains work
 * on fetch Request/Response, which cannot carry HTTP/2 trailers, so this step answers the
 * caller's stream itself and leaves on `ctx.res` only a record of the outcome: no body, the
 * `grpc-status` (and `grpc-message`, `x-mesher-error`) headers, and the HTTP status that gRPC
 * status maps to, which is what the handlers before it (breaker, outlier detection, balancers)
 * and the metrics judge.
 *
 * It returns when the call is over (the caller got its status), not at response headers: the
 * `timeout` handler before it therefore bounds the whole call, as a gRPC deadline does. It
 * throws a MeshError when the call fails (connection refused, reset, deadline, the caller
 * cancelling); the listener then ends the call with that error's status.
 */
import http2 from "node:http2";
import { MeshError } from "../pipeline/errors.ts";
import type { Ctx, Handler } from "../pipeline/types.ts";
import type { ClientTlsOptions } from "../tls/options.ts";
import type { Endpoint } from "../upstream/cluster.ts";
import { grpcCalls, grpcOutcome, HOP, type GrpcCall } from "./grpcCall.ts";

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = http2.constants;
const END_STREAM = 0x1;

/** Pooled HTTP/2 sessions to upstream endpoints, one per address (and TLS or not). */
export class SessionPool {
  readonly #sessions = new Map<string, { session: http2.ClientHttp2Session; tls?: ClientTlsOptions }>();
  /**
   * The session to `address`, over TLS with `tls` (then `https://`, ALPN h2). `clientTls()`
   * returns the same object until its files change, so a changed CA or client certificate
   * opens a new session; the old one finishes its open calls and closes.
   */
  get(address: string, tls?: ClientTlsOptions): http2.ClientHttp2Session {
    const key = tls ? `https://${address}` : address;
    const entry = this.#sessions.get(key);
    if (entry && !entry.session.closed && !entry.session.destroyed) {
      if (entry.tls === tls) return entry.session;
      entry.session.close();
    }
    const session = tls
      ? http2.connect(`https://${address}`, {
          ca: tls.ca,
          cert: tls.cert,
          key: tls.key,
          servername: tls.servername,
          rejectUnauthorized: tls.rejectUnauthorized,
        })
      : http2.connect(`http://${address}`);
    const drop = () => {
      if (this.#sessions.get(key)?.session === session) this.#sessions.delete(key);
    };
    session.on("error", drop); // the streams on it report the error themselves
    session.on("close", drop);
    session.on("goaway", drop);
    this.#sessions.set(key, { session, tls });
    return session;
  }
  close(): void {
    for (const { session } of this.#sessions.values()) session.destroy();
    this.#sessions.clear();
  }
}

/** The upstream request headers: the chain's headers (after routing, tracing...) and the pseudo-headers. */
function upstreamHeaders(ctx: Ctx, authority: string, scheme: string): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = { ":method": ctx.method, ":path": ctx.path, ":authority": authority, ":scheme": scheme };
  ctx.headers.forEach((value, name) => {
    if (!HOP.has(name)) out[name] = value;
  });
  return out;
}

/** Response headers or trailers as they go back to the caller. */
function responseHeaders(h: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [k, x] of Object.entries(h)) {
    if (x === undefined || x === null || HOP.has(k) || (k.startsWith(":") && k !== ":status")) continue;
    out[k] = x;
  }
  return out;
}

/** Forwards the call to `endpoint`; resolves when the caller has its status. */
function relay(ctx: Ctx, call: GrpcCall, endpoint: Endpoint, pool: SessionPool, tls: ClientTlsOptions | undefined): Promise<void> {
  const { stream } = call;
  const signal = ctx.signal;
  return new Promise<void>((resolve, reject) => {
    let upstream: http2.ClientHttp2Stream;
    try {
      upstream = pool.get(endpoint.address, tls).request(upstreamHeaders(ctx, call.authority, tls ? "https" : "http"));
    } catch (err) {
      reject(new MeshError("upstream_connect_failure", `cannot open a stream to ${endpoint.address}: ${(err as Error).message}`));
      return;
    }
    let settled = false;
    let answered = false;
    let trailersIn = false;
    // The abort listener is not removed when the call settles: the signal is the call's own
    // (it goes with the call), and removing it cost more than the rest of this function.
    const settle = () => {
      settled = true;
      call.onEnd = undefined;
    };
    const fail = (err: MeshError) => {
      if (settled) return;
      settle();
      stream.unpipe(upstream);
      upstream.unpipe(stream);
      if (!upstream.closed) upstream.close(NGHTTP2_CANCEL);
      reject(err);
    };
    // A deadline (the call's grpc-timeout or a timeout handler's) or the caller cancelling.
    const onAbort = () => fail(signal.reason instanceof MeshError ? signal.reason : new MeshError("upstream_reset", "the call was aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    call.onEnd = (trailers) => {
      if (settled) return;
      settle();
      ctx.res = grpcOutcome(trailers);
      resolve();
    };

    stream.pipe(upstream);
    upstream.on("response", (h, flags) => {
      if (settled) return;
      answered = true;
      if (flags & END_STREAM) {
        // Trailers-only response (an error status with no messages).
        trailersIn = true;
        call.respondTrailersOnly(responseHeaders(h));
        return;
      }
      call.respond(responseHeaders(h));
      upstream.pipe(stream);
    });
    upstream.on("trailers", (t) => {
      trailersIn = true;
      if (!settled) call.trailers = responseHeaders(t);
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
      if (settled || trailersIn) return;
      if (!answered) fail(new MeshError("upstream_reset", `${endpoint.address} closed the call without answering`));
      else if (upstream.rstCode !== undefined && upstream.rstCode !== NGHTTP2_NO_ERROR) {
        fail(new MeshError("upstream_reset", `${endpoint.address} reset the call (code ${upstream.rstCode})`));
      }
      // Else it ended without trailers: the caller's stream ends too, with UNAVAILABLE (GrpcCall).
    });
  });
}

/**
 * The gRPC transport of one listener (its session pool) and one config: `tlsOf` gives the TLS
 * options of the services that set `services.X.tls` (consumer side; the provider side calls
 * its own app over h2c).
 */
export function grpcTransport(pool: SessionPool, tlsOf?: Map<string, () => ClientTlsOptions>): Handler {
  return async function grpcTransport(ctx) {
    const call = grpcCalls.get(ctx);
    if (!call) throw new MeshError("internal", "the gRPC transport ran on a call that is not gRPC");
    const endpoint = ctx.endpoint;
    if (!endpoint) throw new MeshError("no_healthy_upstream", `no endpoint chosen for ${ctx.service}`);
    if (ctx.signal.aborted) throw ctx.signal.reason instanceof MeshError ? ctx.signal.reason : new MeshError("upstream_reset", "the call was aborted");
    ctx.attempts++;
    endpoint.active++;
    try {
      await relay(ctx, call, endpoint, pool, tlsOf?.get(ctx.service)?.());
    } finally {
      endpoint.active--;
    }
  };
}
