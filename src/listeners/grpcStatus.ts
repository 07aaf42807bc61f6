/**
 * gRPC status codes and their mappings to and from mesher's errors and HTTP statuses. Pure:
 * no runtime glue.
 */
import { MeshError, type ErrorCode } from "../pipeline/errors.ts";

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
  UNAUTHENTICATED: 16,
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
  registry_unavailable: GrpcStatus.UNAVAILABLE,
  shutting_down: GrpcStatus.UNAVAILABLE,
  upstream_timeout: GrpcStatus.DEADLINE_EXCEEDED,
  loop_detected: GrpcStatus.INTERNAL,
};

/**
 * gRPC status -> the HTTP status the metrics count it as and the handlers judge it by (the
 * mapping of Google's API design guide, which Envoy also applies to gRPC responses for outlier
 * detection): gRPC calls land in the same success/4xx/5xx series as HTTP ones, and UNAVAILABLE
 * (503), DEADLINE_EXCEEDED (504), UNKNOWN/INTERNAL/DATA_LOSS (500) are 5xx.
 */
const HTTP_OF: Record<number, number> = { 0: 200, 1: 499, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400, 12: 501, 14: 503, 16: 401 };
export function httpStatusOfGrpc(status: number): number {
  return HTTP_OF[status] ?? 500;
}

/**
 * HTTP status -> gRPC status, for a response that carries no grpc-status (a handler that
 * answered with a plain Response): grpc/doc/http-grpc-status-mapping.md, 2xx as OK.
 */
export function grpcStatusOfHttp(status: number): number {
  if (status >= 200 && status < 300) return GrpcStatus.OK;
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

export function grpcStatusOf(err: MeshError): number {
  return STATUS_OF[err.code] ?? GrpcStatus.INTERNAL;
}

/** The gRPC error trailers of a MeshError (grpc-message is percent-encoded, per the spec). */
export function grpcErrorTrailers(err: MeshError, status = grpcStatusOf(err)): Record<string, string> {
  return {
    "grpc-status": String(status),
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
