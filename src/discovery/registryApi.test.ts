import { expect, test } from "bun:test";
import { fromMicro, toMicro } from "./registryApi.ts";
import type { Instance } from "./types.ts";

test("go-micro bodies in either key case become instances", () => {
  const upper = fromMicro({ Name: "greeter", Version: "1.0", Metadata: { team: "a" }, Nodes: [{ Id: "g1", Address: "10.0.0.1", Port: 9090, Metadata: { zone: "z" } }] });
  const lower = fromMicro({ name: "greeter", version: "1.0", metadata: { team: "a" }, nodes: [{ id: "g1", address: "10.0.0.1", port: 9090, metadata: { zone: "z" } }] });
  const want: Instance[] = [{ id: "g1", service: "greeter", addresses: { http: "10.0.0.1:9090" }, tags: { team: "a", zone: "z", version: "1.0" }, status: "UP" }];
  expect(upper).toEqual(want);
  expect(lower).toEqual(want);
  // "host:port" in address with no port, and IPv6 hosts.
  expect(fromMicro({ name: "g", nodes: [{ id: "1", address: "10.0.0.1:80" }] })[0]!.addresses.http).toBe("10.0.0.1:80");
  expect(fromMicro({ name: "g", nodes: [{ id: "1", address: "::1", port: 80 }] })[0]!.addresses.http).toBe("[::1]:80");
});

test("bad go-micro bodies are refused with what is missing", () => {
  expect(() => fromMicro({ nodes: [] })).toThrow(/name/);
  expect(() => fromMicro({ name: "g" })).toThrow(/nodes/);
  expect(() => fromMicro({ name: "g", nodes: [{ address: "a", port: 1 }] })).toThrow(/id/);
  expect(() => fromMicro({ name: "g", nodes: [{ id: "1", address: "10.0.0.1" }] })).toThrow(/host:port/);
  // Deregistration needs ids only.
  expect(fromMicro({ name: "g", nodes: [{ id: "1" }] }, false)[0]!.id).toBe("1");
});

test("instances become go-micro services, one per version", () => {
  const out = toMicro([
    { id: "a", service: "s", addresses: { http: "10.0.0.1:80" }, tags: { version: "1" }, status: "UP" },
    { id: "b", service: "s", addresses: { http: "[::1]:81" }, tags: { version: "2" }, status: "DOWN" },
  ]);
  expect(out).toEqual([
    { name: "s", version: "1", metadata: {}, nodes: [{ id: "a", address: "10.0.0.1", port: 80, metadata: { version: "1", status: "UP" } }] },
    { name: "s", version: "2", metadata: {}, nodes: [{ id: "b", address: "::1", port: 81, metadata: { version: "2", status: "DOWN" } }] },
  ]);
});
