/**
 * The downstream side of one gRPC call: the HTTP/2 stream the caller opened, and how mesher
 * ends it. Whatever happens, the caller gets a gRPC status: the upstream's trailers, or
 * mesher's own error as trailers (a trailers-only response when nothing was sent yet), never
 * an HTTP body.
 */
import type http2 from "node:http2";
import { Readable } from "node:stream";
import type { ReadableStream as NodeWebStream } from "node:stream/web";
import { MeshError } from "../pipeline/errors.ts";
import type { Ctx } from "../pipeline/types.ts";
import { grpcErrorTrailers, GrpcStatus, grpcStatusOf, grpcStatusOfHttp, httpStatusOfGrpc } from "./grpcStatus.ts";

/** The gRPC call a Ctx belongs to (set by the gRPC listener, read by the gRPC transport). */
export const grpcCalls = new WeakMap<Ctx, GrpcCall>();

/** Headers that never cross a proxy (RFC 9113 §8.2.2 connection-specific ones). */
export const HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "http2-settings", "host"]);

/** The status headers of a gRPC response that mesher keeps on ctx.res (metrics, access log). */
const STATUS_HEADERS = ["grpc-status", "grpc-message", "x-mesher-error"];

export class GrpcCall {
  /** Trailers the stream ends with when it ends after its headers (the upstream's, or mesher's error). */
  trailers?: http2.OutgoingHttpHeaders;
  /** True once the call's status went to the caller. */
  ended = false;
  /** Called once, when the status went to the caller. */
  onEnd?: (trailers: http2.OutgoingHttpHeaders) => void;

  constructor(
    readonly stream: http2.ServerHttp2Stream,
    /** The `:authority` the caller named (passed upstream as is). */
    readonly authority: string,
  ) {
    stream.on("wantTrailers", () => {
      const t = this.trailers ?? grpcErrorTrailers(new MeshError("upstream_reset", "the upstream ended the call without a status"));
      try {
        stream.sendTrailers(t);
      } catch {
        // the stream was reset meanwhile
      }
      this.#ended(t);
    });
  }

  #ended(trailers: http2.OutgoingHttpHeaders): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd?.(trailers);
  }

  get #gone(): boolean {
    return this.stream.closed || this.stream.destroyed;
  }

  /** Sends response headers; messages follow, then `trailers` when the stream ends. */
  respond(headers: http2.OutgoingHttpHeaders): void {
    if (!this.#gone) this.stream.respond(headers, { waitForTrailers: true });
  }

  /** Answers with headers that carry the status and no message (a trailers-only response). */
  respondTrailersOnly(headers: http2.OutgoingHttpHeaders): void {
    if (!this.#gone && !this.stream.headersSent) this.stream.respond(headers, { endStream: true });
    this.#ended(headers);
  }

  /**
   * Ends the call with mesher's own status: trailers-only when nothing was sent yet, else as
   * trailers after the messages already sent. Anything the caller still sends is discarded.
   */
  finish(trailers: Record<string, string>): void {
    if (this.ended) return;
    if (this.#gone) return this.#ended(trailers);
    this.stream.resume();
    if (!this.stream.headersSent) {
      return this.respondTrailersOnly({ ":status": 200, "content-type": "application/grpc", ...trailers });
    }
    this.trailers = trailers;
    if (!this.stream.writableEnded) this.stream.end(); // "wantTrailers" sends them
  }

  /**
   * Answers with the Response a chain ended with when the gRPC transport did not answer: an
   * error (already in gRPC terms, see grpcErrorResponse) or a handler's own answer (a breaker
   * fallback). A body is sent as gRPC-framed messages; the status is its `grpc-status` header,
   * else the HTTP status mapped to gRPC.
   */
  answer(res: Response): void {
    if (this.ended || this.#gone) {
      res.body?.cancel().catch(() => {});
      return;
    }
    const trailers: Record<string, string> = { "grpc-status": res.headers.get("grpc-status") ?? String(grpcStatusOfHttp(res.status)) };
    for (const name of STATUS_HEADERS.slice(1)) {
      const value = res.headers.get(name);
      if (value !== null) trailers[name] = value;
    }
    if (!res.body || this.stream.headersSent) {
      res.body?.cancel().catch(() => {});
      return this.finish(trailers);
    }
    this.trailers = trailers;
    this.respond({ ":status": 200, "content-type": res.headers.get("content-type") ?? "application/grpc" });
    Readable.fromWeb(res.body as unknown as NodeWebStream<Uint8Array>).pipe(this.stream);
  }
}

/**
 * The Response a MeshError becomes on a gRPC call: no body, its gRPC status in the headers
 * (sent as trailers) and the HTTP status that status maps to (what metrics and the access log
 * record). A call the caller cancelled is CANCELLED, whatever the chain threw.
 */
export function grpcErrorResponse(err: MeshError, ctx: Ctx): Response {
  const status = ctx.req.signal.aborted ? GrpcStatus.CANCELLED : grpcStatusOf(err);
  return new Response(null, { status: httpStatusOfGrpc(status), headers: grpcErrorTrailers(err, status) });
}

/** The Response the gRPC transport leaves on ctx.res for a call that ended with `trailers`. */
export function grpcOutcome(trailers: http2.OutgoingHttpHeaders): Response {
  const headers: Record<string, string> = {};
  for (const name of STATUS_HEADERS) {
    const value = trailers[name];
    if (value !== undefined) headers[name] = String(value);
  }
  headers["grpc-status"] ??= String(GrpcStatus.UNKNOWN);
  return new Response(null, { status: httpStatusOfGrpc(Number(headers["grpc-status"])), headers });
}
