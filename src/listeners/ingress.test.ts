import { describe, expect, test } from "bun:test";
import { ConfigError } from "../config/errors.ts";
import { resolveConfig } from "../config/resolve.ts";
import type { UserConfig } from "../config/schema.ts";
import { compileIngress } from "./ingress.ts";

const table = (ingress: UserConfig["ingress"]) =>
  compileIngress(resolveConfig({ service: { name: "gw" }, mode: "edge", ingress }).ingress);
const none = new Headers();

describe("ingress table", () => {
  test("Mesher rules: apiPath is an unanchored regex, first match wins, host must match", () => {
    const t = table([
      { host: "shop.example.com", apiPath: "^/api", service: "shop" },
      { apiPath: "/api", service: "catalog", port: 8081 },
      { apiPath: "/legacy/.*", service: "legacy", redirectPath: "/v2/legacy" },
    ]);
    expect(t.match("shop.example.com", "/api/x", none)?.service).toBe("shop");
    expect(t.match("SHOP.example.com:8443", "/api/x", none)?.service).toBe("shop"); // port ignored, case folded
    expect(t.match("other.example.com", "/api/x", none)).toMatchObject({ service: "catalog", port: "8081", path: "/api/x" });
    expect(t.match(null, "/v1/api", none)?.service).toBe("catalog"); // unanchored
    expect(t.match("h", "/legacy/a/b?q=1", none)).toMatchObject({ service: "legacy", path: "/v2/legacy?q=1" });
    expect(t.match("h", "/nothing", none)).toBeUndefined();
  });

  test("prefix, exact and regex paths; prefix and regex rewrites keep the query", () => {
    const t = table([
      { path: { exact: "/health" }, service: "a" },
      { path: { prefix: "/service/1" }, service: "one", rewrite: { prefix: "/" } },
      { path: { regex: "/users/[0-9]+" }, service: "users", rewrite: { regex: "^/users/([0-9]+)$", substitution: "/u/\\1" } },
    ]);
    expect(t.match(null, "/health", none)?.service).toBe("a");
    expect(t.match(null, "/health/x", none)).toBeUndefined();
    expect(t.match(null, "/service/1/items?x=1", none)).toMatchObject({ service: "one", path: "/items?x=1" });
    expect(t.match(null, "/service/1", none)?.path).toBe("/");
    expect(t.match(null, "/users/42?y", none)).toMatchObject({ service: "users", path: "/u/42?y" });
    expect(t.match(null, "/users/42/x", none)).toBeUndefined(); // regex is anchored
  });

  test("host wildcards and case-insensitive paths", () => {
    const t = table([
      { host: ["*.example.com"], path: { prefix: "/A" }, caseSensitive: false, service: "wild" },
      { host: "api.*", service: "api" },
      { host: "exact.test:8080", service: "withport" },
    ]);
    expect(t.match("x.example.com", "/a/b", none)?.service).toBe("wild");
    expect(t.match("example.com", "/a", none)).toBeUndefined();
    expect(t.match("api.internal", "/", none)?.service).toBe("api");
    expect(t.match("exact.test:8080", "/", none)?.service).toBe("withport");
    expect(t.match("exact.test:9090", "/", none)).toBeUndefined();
  });

  test("header matches, inverted and presence", () => {
    const t = table([
      { headers: [{ name: "x-canary", exact: "1" }], service: "canary" },
      { headers: [{ name: "Authorization", present: false }], service: "anon" },
      { headers: [{ name: "user-agent", regex: "curl/.*", invert: true }], service: "browser" },
      { service: "rest" },
    ]);
    expect(t.match(null, "/", new Headers({ "x-canary": "1" }))?.service).toBe("canary");
    expect(t.match(null, "/", new Headers({ "user-agent": "curl/8" }))?.service).toBe("anon");
    expect(t.match(null, "/", new Headers({ authorization: "x", "user-agent": "firefox" }))?.service).toBe("browser");
    expect(t.match(null, "/", new Headers({ authorization: "x", "user-agent": "curl/8" }))?.service).toBe("rest");
  });

  test("weighted services share requests by weight", () => {
    const t = table([{ service: [{ name: "v1", weight: 90 }, { name: "v2", weight: 10 }] }]);
    const counts: Record<string, number> = { v1: 0, v2: 0 };
    for (let i = 0; i < 2000; i++) counts[t.match(null, "/", none)!.service]!++;
    expect(counts.v1).toBeGreaterThan(1600);
    expect(counts.v2).toBeGreaterThan(100);
    const zero = table([{ service: [{ name: "only", weight: 0 }, { name: "never", weight: 0 }] }]);
    expect(zero.match(null, "/", none)?.service).toBe("only");
  });

  test("bad rules are ConfigErrors naming the field", () => {
    const bad = (ingress: unknown) => {
      try {
        resolveConfig({ service: { name: "gw" }, ingress });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).problems.map((p) => `${p.path}: ${p.expected}`).join("\n");
      }
      throw new Error("expected a ConfigError");
    };
    expect(bad([{ apiPath: "(", service: "a" }])).toContain("ingress[0].apiPath: a valid regular expression");
    expect(bad([{ apiPath: "/a", path: { prefix: "/a" }, service: "a" }])).toContain("apiPath or path, not both");
    expect(bad([{ path: { exact: "/a" }, rewrite: { prefix: "/" }, service: "a" }])).toContain("rewrite.prefix needs a path.prefix");
    expect(bad([{ apiPath: "/a" }])).toContain("ingress[0].service");
    expect(bad([{ service: "a", headers: [{ name: "x", exact: "1", prefix: "2" }] }])).toContain("at most one of");
  });
});
