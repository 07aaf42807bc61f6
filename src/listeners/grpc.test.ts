import { expect, test } from "bun:test";
import { MeshError } from "../pipeline/errors.ts";
import { grpcErrorTrailers, GrpcStatus, grpcStatusOf, parseGrpcTimeout } from "./grpc.ts";

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
