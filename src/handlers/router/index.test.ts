import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../config/errors.ts";
import { resolveConfig } from "../../config/resolve.ts";
import type { UserConfig } from "../../config/schema.ts";
import { staticEndpoints } from "../../pipeline/build.ts";
import type { Ctx } from "../../pipeline/types.ts";
import { ClusterManager } from "../../upstream/clusters.ts";
import { router } from "./index.ts";

const V123 = [
  { address: "127.0.0.1:1001", tags: { version: "v1" } },
  { address: "127.0.0.1:1002", tags: { version: "v2" } },
  { address: "127.0.0.1:1003", tags: { version: "v3" } },
];

function setup(services: UserConfig["services"]) {
  const config = resolveConfig({ service: { name: "shop", version: "1.0", app: "demo" }, services });
  const clusters = new ClusterManager();
  clusters.setOrigin("static", staticEndpoints(config));
  const handler = router({ config, clusters, direction: "consumer" });
  return async (init: { service?: string; path?: string; method?: string; headers?: Record<string, string>; res?: Response } = {}) => {
    const ctx = {
      service: init.service ?? "reviews",
      path: init.path ?? "/",
      method: init.method ?? "GET",
      headers: new Headers(init.headers),
      body: null,
      source: { name: "shop", version: "1.0", app: "demo" },
      attempts: 0,
      state: {},
    } as unknown as Ctx;
    await handler(ctx, async () => {
      ctx.res = init.res ?? new Response("ok", { headers: { "x-app": "1" } });
    });
    return ctx;
  };
}

function problems(services: unknown): string[] {
  try {
    resolveConfig({ service: { name: "shop" }, services });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.expected}`);
    throw err;
  }
  return [];
}

describe("router", () => {
  test("80/20 by tags over 1,000 requests is exactly 800/200", async () => {
    const route = setup({ reviews: { endpoints: V123, routes: [{ route: [{ tags: { version: "v1" }, weight: 80 }, { tags: { version: "v2" }, weight: 20 }] }] } });
    const counts: Record<string, number> = {};
    for (let i = 0; i < 1000; i++) {
      const v = (await route()).route!.tags!.version!;
      counts[v] = (counts[v] ?? 0) + 1;
    }
    expect(counts).toEqual({ v1: 800, v2: 200 });
  });

  test("precedence: highest first, first match wins, ties keep written order", async () => {
    const route = setup({
      reviews: {
        endpoints: V123,
        routes: [
          { name: "all", precedence: 0, route: [{ tags: { version: "v1" } }] },
          { name: "jason", precedence: 5, match: { headers: { "end-user": { exact: "jason" } } }, route: [{ tags: { version: "v3" } }] },
          { name: "tie-a", precedence: 1, match: { path: { prefix: "/a" } }, route: [{ tags: { version: "v2" } }] },
          { name: "tie-b", precedence: 1, match: { path: { prefix: "/" } }, route: [{ tags: { version: "v1" } }] },
        ],
      },
    });
    expect((await route({ headers: { "End-User": "jason" }, path: "/a" })).route!.name).toBe("jason");
    expect((await route({ path: "/a" })).route!.name).toBe("tie-a");
    expect((await route({ path: "/b" })).route!.name).toBe("tie-b");
    const plain = setup({ reviews: { endpoints: V123, routes: [{ precedence: 1, match: { method: "POST" } }] } });
    expect((await plain()).route).toEqual({ name: "default" });
  });

  test("weights under 100 send the rest to the newest version (Mesher's 'latest')", async () => {
    const route = setup({ reviews: { endpoints: V123, routes: [{ route: [{ tags: { version: "v1" }, weight: 50 }] }] } });
    const seen = [];
    for (let i = 0; i < 4; i++) seen.push((await route()).route!.tags!.version);
    expect(seen.sort()).toEqual(["v1", "v1", "v3", "v3"]);
  });

  test("per-route timeout, retry and fault are carried on ctx.route", async () => {
    const route = setup({
      reviews: {
        endpoints: V123,
        routes: [{ name: "r", timeout: "2s", retry: { attempts: 3, on: ["5xx"] }, fault: { abort: { percent: 10, httpStatus: 503 } } }],
      },
    });
    const r = (await route()).route!;
    expect(r.timeout).toBe(2000);
    expect(r.retry!.attempts).toBe(3);
    expect(r.retry!.on).toEqual(["5xx"]);
    expect(r.fault!.abort).toEqual({ percent: 10, httpStatus: 503 });
  });

  test("rewrite by prefix and by regex keeps the query", async () => {
    const route = setup({
      reviews: {
        endpoints: V123,
        routes: [
          { match: { path: { prefix: "/v1/api/" } }, rewrite: { prefix: "/" } },
          { match: { path: { prefix: "/old" } }, rewrite: { prefix: "/new" } },
          { match: { path: { regex: "/users/\\d+/.*" } }, rewrite: { regex: { pattern: "^/users/(\\d+)/(.*)$", substitution: "/$2?user=$1" } } },
          { match: { path: { exact: "/exact" } }, rewrite: { prefix: "/whole" } },
        ],
      },
    });
    expect((await route({ path: "/v1/api/items?x=1" })).path).toBe("/items?x=1");
    expect((await route({ path: "/old/thing" })).path).toBe("/new/thing");
    expect((await route({ path: "/users/7/cart" })).path).toBe("/cart?user=7");
    expect((await route({ path: "/exact?q" })).path).toBe("/whole?q");
  });

  test("request and response header actions", async () => {
    const route = setup({
      reviews: {
        endpoints: V123,
        routes: [{ headers: { request: { set: { "x-a": "1" }, add: { "x-b": "2" }, remove: ["x-drop"] }, response: { set: { "x-served-by": "mesher" }, remove: ["x-app"] } } }],
      },
    });
    const ctx = await route({ headers: { "x-b": "1", "x-drop": "y", "x-a": "0" } });
    expect(ctx.headers.get("x-a")).toBe("1");
    expect(ctx.headers.get("x-b")).toBe("1, 2");
    expect(ctx.headers.has("x-drop")).toBe(false);
    expect(ctx.res!.headers.get("x-served-by")).toBe("mesher");
    expect(ctx.res!.headers.has("x-app")).toBe(false);
  });

  test("a route may send to another service", async () => {
    const route = setup({
      reviews: { endpoints: V123, routes: [{ match: { headers: { "x-new": {} } }, service: "ratings" }] },
      ratings: { endpoints: ["127.0.0.1:2001"] },
    });
    const ctx = await route({ headers: { "x-new": "" } });
    expect(ctx.service).toBe("ratings");
    expect(ctx.cluster!.name).toBe("ratings");
    expect((await route()).cluster!.name).toBe("reviews");
  });

  test("a route set before the router is kept", async () => {
    const route = setup({ reviews: { endpoints: V123, routes: [{ route: [{ tags: { version: "v1" } }] }] } });
    const ctx = await route();
    expect(ctx.route!.tags).toEqual({ version: "v1" });
  });
});

describe("route config errors name the path", () => {
  test("weights over 100", () => {
    expect(problems({ reviews: { routes: [{ route: [{ tags: { version: "v1" }, weight: 80 }, { tags: { version: "v2" }, weight: 30 }] }] } })).toEqual([
      "services.reviews.routes[0].route: weights summing to at most 100",
    ]);
  });

  test("weights on some entries only", () => {
    expect(problems({ reviews: { routes: [{ route: [{ tags: { version: "v1" }, weight: 80 }, { tags: { version: "v2" } }] }] } })[0]).toContain(
      "services.reviews.routes[0].route: a weight on every entry",
    );
  });

  test("a bad regex, an unknown operator, an unknown service", () => {
    expect(problems({ reviews: { routes: [{ match: { headers: { a: { regex: "(" } } } }] } })[0]).toBe(
      "services.reviews.routes[0].match.headers.a.regex: a valid regular expression",
    );
    expect(problems({ reviews: { routes: [{ match: { headers: { a: { equals: "x" } } } }] } }).join()).toContain("equals");
    expect(problems({ reviews: { routes: [{ service: "nope", mirror: { service: "gone" } }] } })).toEqual([
      "services.reviews.routes[0].service: a service under services (reviews)",
      "services.reviews.routes[0].mirror.service: a service under services (reviews)",
    ]);
  });
});
