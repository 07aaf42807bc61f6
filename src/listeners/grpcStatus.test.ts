import { expect, test } from "bun:test";
import { MeshError } from "../pipeline/errors.ts";
import type { Ctx } from "../pipeline/types.ts";
import { grpcErrorResponse, grpcOutcome } from "./grpcCall.ts";
import { grpcErrorTrailers, GrpcStatus, grpcStatusOf, grpcStatusOfHttp, parseGrpcTimeout } from "./grpcStatus.ts";

test("grpc-timeout values parse to milliseconds", () => {
  expect(parseGrpcTimeout("100m")).toBe(100);
  expect(parseGrpcTimeout("5S")).toBe(5000);
  expect(parseGrpcTimeout("2M")).toBe(120_000);
  expect(parseGrpcTimeout("1H")).toBe(3_600_000);
  expect(parseGrpcTimeout("1500u")).toBe(1.5);
  expect(parseGrpcTimeout("5")).toBeUndefined();
  expect(parseGrpcTimeout("123456789S")).toBeUndefined(); // at most 8 digits
  expect(parseGrpcTimeout(undefined)).toBeUndefined();
});

test("mesher's errors map to gRPC statuses with a percent-encoded message", () => {
  expect(grpcStatusOf(new MeshError("unknown_service", "x"))).toBe(GrpcStatus.UNIMPLEMENTED);
  expect(grpcStatusOf(new MeshError("no_healthy_upstream", "x"))).toBe(GrpcStatus.UNAVAILABLE);
  expect(grpcStatusOf(new MeshError("upstream_timeout", "x"))).toBe(GrpcStatus.DEADLINE_EXCEEDED);
  expect(grpcStatusOf(new MeshError("rate_limited", "x"))).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
  expect(grpcErrorTrailers(new MeshError("circuit_open", "open 100%"))).toEqual({
    "grpc-status": "14",
    "grpc-message": "open%20100%25",
    "x-mesher-error": "circuit_open",
  });
});

test("HTTP statuses of a handler's own answer map to gRPC (grpc's http-grpc-status mapping, 2xx as OK)", () => {
  expect(grpcStatusOfHttp(200)).toBe(GrpcStatus.OK);
  expect(grpcStatusOfHttp(404)).toBe(GrpcStatus.UNIMPLEMENTED);
  expect(grpcStatusOfHttp(503)).toBe(GrpcStatus.UNAVAILABLE);
  expect(grpcStatusOfHttp(429)).toBe(GrpcStatus.UNAVAILABLE);
  expect(grpcStatusOfHttp(418)).toBe(GrpcStatus.UNKNOWN);
});

test("a call's outcome on ctx.res: no body, its gRPC status, the HTTP status it counts as", async () => {
  const ok = grpcOutcome({ "grpc-status": "0", "x-other": "kept out" });
  expect(ok.status).toBe(200);
  expect(ok.headers.get("grpc-status")).toBe("0");
  expect(ok.headers.has("x-other")).toBe(false);
  expect(grpcOutcome({ "grpc-status": "14", "grpc-message": "down" }).status).toBe(503);
  expect(grpcOutcome({ "grpc-status": "13" }).status).toBe(500);
  expect(grpcOutcome({ "grpc-status": "12" }).status).toBe(501); // UNIMPLEMENTED: not a failure for the breaker by default
  expect(grpcOutcome({}).headers.get("grpc-status")).toBe(String(GrpcStatus.UNKNOWN));
});

test("mesher's errors become bodiless responses carrying grpc-status; a cancelled call is CANCELLED", async () => {
  const ctx = (aborted: boolean) => {
    const ac = new AbortController();
    if (aborted) ac.abort();
    return { req: new Request("http://greeter/p.S/M", { method: "POST", signal: ac.signal }) } as Ctx;
  };
  const res = grpcErrorResponse(new MeshError("rate_limited", "slow down"), ctx(false));
  expect(res.status).toBe(429);
  expect(res.body).toBeNull();
  expect(Object.fromEntries(res.headers)).toMatchObject({ "grpc-status": "8", "grpc-message": "slow%20down", "x-mesher-error": "rate_limited" });
  const cancelled = grpcErrorResponse(new MeshError("upstream_reset", "the caller cancelled the call"), ctx(true));
  expect(cancelled.status).toBe(499);
  expect(cancelled.headers.get("grpc-status")).toBe(String(GrpcStatus.CANCELLED));
});
