/**
 * Typed errors of the data path. Handlers throw a MeshError with a short stable code; the
 * listener turns it into an HTTP response in exactly one place (`errorResponse`), with a
 * JSON body and an `x-mesher-error` header naming the code (as Envoy's response flags do).
 */

/** Every code mesher can answer with, and the HTTP status it maps to. */
export const ERROR_STATUS = {
  bad_request: 400,
  forbidden: 403,
  unknown_service: 404,
  no_route: 404,
  rate_limited: 429,
  internal: 500,
  upstream_connect_failure: 502,
  upstream_reset: 502,
  circuit_open: 503,
  fault_injected: 503,
  no_healthy_upstream: 503,
  overloaded: 503,
  registry_unavailable: 503,
  shutting_down: 503,
  upstream_timeout: 504,
  loop_detected: 508,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** The header that names the error code on every response mesher itself produces. */
export const ERROR_HEADER = "x-mesher-error";

export class MeshError extends Error {
  readonly code: ErrorCode;
  /** Overrides the status mapped from the code (fault injection aborts with a chosen one). */
  readonly status: number;
  constructor(code: ErrorCode, message: string, options?: { status?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MeshError";
    this.code = code;
    this.status = options?.status ?? ERROR_STATUS[code];
  }
}

/** Turns anything a handler threw into a MeshError; unknown errors become `internal`. */
export function toMeshError(err: unknown): MeshError {
  if (err instanceof MeshError) return err;
  if (err instanceof Error && err.name === "AbortError") {
    return new MeshError("upstream_reset", "the request was aborted", { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new MeshError("internal", `handler failed: ${message}`, { cause: err });
}

/** The one place where a MeshError becomes an HTTP response. */
export function errorResponse(err: MeshError): Response {
  return new Response(JSON.stringify({ error: { code: err.code, message: err.message } }), {
    status: err.status,
    headers: { "content-type": "application/json", [ERROR_HEADER]: err.code },
  });
}
