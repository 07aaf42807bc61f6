import { expect, test } from "bun:test";
import { ConfigError } from "./errors.ts";
import { parseServicePorts, resolveConfig } from "./resolve.ts";

function problems(raw: unknown): string[] {
  try {
    resolveConfig(raw);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.expected}`);
    throw err;
  }
  return [];
}

test("defaults are filled in and the result is frozen", () => {
  const c = resolveConfig({ service: { name: "shop" } });
  expect(c.mode).toBe("sidecar");
  expect(c.listen.consumer).toBe("127.0.0.1:30101");
  expect(c.listen.admin).toBe("127.0.0.1:30102");
  expect(c.listen.provider).toBeUndefined();
  expect(c.services).toEqual({});
  expect(Object.isFrozen(c)).toBe(true);
  expect(Object.isFrozen(c.listen)).toBe(true);
});

test("every problem is reported at once, each with its path", () => {
  const p = problems({
    service: { name: "bad name!" },
    listen: { consumer: "nohost", admin: 5 },
    services: { "x/y": { endpoints: [] } },
  });
  expect(p).toHaveLength(4);
  expect(p[0]).toStartWith("service.name: a service name");
  expect(p[1]).toStartWith('listen.consumer: an address "host:port"');
  expect(p[2]).toStartWith("listen.admin: an address");
  expect(p[3]).toStartWith('services["x/y"]: a service name');
});

test("a missing required field and a non-object config are named", () => {
  expect(problems({})).toEqual(["service: a required field"]);
  expect(problems([1])).toEqual([": a config object"]);
});

test("unknown chain entries are refused; user handlers by name are accepted", () => {
  expect(problems({ service: { name: "s" }, chains: { provider: ["bogus"] } })[0]).toStartWith("chains.provider[0]: a handler name");
  expect(problems({ service: { name: "s" }, handlers: { mine: () => () => {} }, chains: { provider: ["mine", "transport"] } })).toEqual([]);
});

test("consumer and provider may not share an address", () => {
  expect(problems({ service: { name: "s" }, listen: { consumer: "127.0.0.1:1", provider: "127.0.0.1:1" } })).toEqual([
    "listen.provider: an address other than listen.consumer",
  ]);
});

test("service ports from the command line", () => {
  expect(parseServicePorts("rest:8080, grpc:9000")).toEqual({ http: 8080, grpc: 9000 });
  expect(() => parseServicePorts("http:0")).toThrow(ConfigError);
  const c = resolveConfig({ service: { name: "s", ports: { http: 1 } } }, { servicePorts: "http:2,grpc:3" });
  expect(c.service.ports).toEqual({ http: 2, grpc: 3 });
});
