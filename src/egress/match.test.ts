import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { compileEgress } from "./match.ts";
import { EgressSchema } from "./schema.ts";

const table = (x: unknown) => compileEgress(v.parse(EgressSchema, x));

describe("egress rules", () => {
  const t = table([
    { name: "api", hosts: ["API.example.com"], ports: [{ port: 8080 }, { port: 8443, protocol: "https" }] },
    { name: "org", hosts: ["*.example.org"] },
  ]);

  test("exact names match case-insensitively, on listed ports only", () => {
    expect(t.match("api.example.com", 8080, "http")).toMatchObject({ rule: "api", address: "api.example.com:8080", port: 8080 });
    expect(t.match("api.example.com", undefined, "http")?.address).toBe("api.example.com:8080");
    expect(t.match("api.example.com", 80, "http")).toBeUndefined();
    expect(t.match("api.example.com", 8443, "connect")?.rule).toBe("api");
    expect(t.match("api.example.com", 8080, "connect")).toBeUndefined(); // an HTTP port is not a tunnel port
    expect(t.match("www.example.com", 8080, "http")).toBeUndefined();
  });

  test('"*.example.org" matches names under it, not the domain itself or look-alikes', () => {
    expect(t.match("a.example.org", undefined, "http")?.address).toBe("a.example.org:80");
    expect(t.match("a.b.example.org", 443, "connect")?.address).toBe("a.b.example.org:443");
    expect(t.match("example.org", undefined, "http")).toBeUndefined();
    expect(t.match("aexample.org", undefined, "http")).toBeUndefined();
    expect(t.match("a.exampleXorg", undefined, "http")).toBeUndefined();
    expect(t.match("a.example.org", 8080, "http")).toBeUndefined(); // no ports listed: 80 and 443 only
  });

  test("both shapes are accepted; allowAll is off unless set", () => {
    expect(table([]).allowAll).toBe(false);
    expect(table({ allowAll: true }).allowAll).toBe(true);
    expect(table({ rules: [{ hosts: ["x.com"] }] }).match("x.com", undefined, "http")?.rule).toBe("0");
  });

  test("bad rules are refused by the schema", () => {
    expect(v.safeParse(EgressSchema, [{ hosts: [] }]).success).toBe(false);
    expect(v.safeParse(EgressSchema, [{ hosts: ["a b.com"] }]).success).toBe(false);
    expect(v.safeParse(EgressSchema, [{ hosts: ["*.a.com"], ports: [{ port: 0 }] }]).success).toBe(false);
    expect(v.safeParse(EgressSchema, [{ hosts: ["a.com"], ports: [{ port: 1, protocol: "udp" }] }]).success).toBe(false);
  });
});
