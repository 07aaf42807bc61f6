/**
 * Routing end to end: an app calls "reviews" through its sidecar; reviews runs as three
 * copies (v1, v2, v3), each behind its own provider sidecar. The same rules written inline,
 * as Mesher's router.yaml and as Istio VirtualService + DestinationRule give the same split.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Server } from "bun";
import { loadConfig } from "../src/config/index.ts";
import { startMesher, type Mesher } from "../src/server.ts";
import { spawnMesher, startApp, startEchoApp, startSidecar, tempDir, viaProxy } from "./helpers.ts";

const FIXTURES = join(import.meta.dir, "fixtures/routing");

const apps = ["v1", "v2", "v3"].map((v) => startEchoApp(v));
const providers = apps.map((app, i) =>
  startSidecar({ service: { name: "reviews", version: `v${i + 1}`, ports: { http: app.port! } }, listen: { provider: "127.0.0.1:0" } }),
);
const reviewsEndpoints = providers.map((p, i) => ({ address: p.addresses.provider!, tags: { version: `v${i + 1}` } }));
const stops: Array<() => unknown> = [];

afterAll(async () => {
  for (const s of stops) await s();
  await Promise.all(providers.map((p) => p.stop()));
  for (const a of apps) a.stop(true);
});

/** Sends n calls to http://reviews/ through `proxy`, 25 at a time; counts which copy answered. */
async function split(proxy: string, n: number, headers: Record<string, string> = {}): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let done = 0; done < n; done += 25) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(25, n - done) }, async () => {
        const res = await viaProxy(proxy, "http://reviews/reviews/1", { headers });
        expect(res.status).toBe(200);
        return ((await res.json()) as { app: string }).app;
      }),
    );
    for (const app of batch) counts[app] = (counts[app] ?? 0) + 1;
  }
  return counts;
}

/** What each way of writing the rules must give. */
async function expectBookinfo(proxy: string) {
  expect(await split(proxy, 1000)).toEqual({ v1: 800, v2: 200 });
  expect(await split(proxy, 20, { "end-user": "jason" })).toEqual({ v3: 20 });
  expect(await split(proxy, 5, { "End-User": "someone" })).toEqual({ v1: 4, v2: 1 });
}

describe("routing through real sidecars", () => {
  test("inline rules: 80/20 split exactly over 1,000 requests; jason goes to v3", async () => {
    const shop = startSidecar({
      service: { name: "productpage" },
      services: {
        reviews: {
          endpoints: reviewsEndpoints,
          routes: [
            { precedence: 1, route: [{ tags: { version: "v1" }, weight: 80 }, { tags: { version: "v2" }, weight: 20 }] },
            { precedence: 2, match: { headers: { "end-user": { exact: "jason" } } }, route: [{ tags: { version: "v3" } }] },
          ],
        },
      },
    });
    stops.push(() => shop.stop());
    await expectBookinfo(`http://${shop.addresses.consumer}`);
  });

  test("the same rules from an included Mesher router.yaml", async () => {
    const dir = tempDir();
    copyFileSync(join(FIXTURES, "router.yaml"), join(dir, "router.yaml"));
    const file = join(dir, "mesher.config.json");
    writeFileSync(file, JSON.stringify({
      service: { name: "productpage" },
      listen: { consumer: "127.0.0.1:0", admin: "127.0.0.1:0" },
      include: ["router.yaml"],
      services: { reviews: { endpoints: reviewsEndpoints } },
    }));
    const shop = startMesher(await loadConfig(file));
    stops.push(() => shop.stop());
    await expectBookinfo(`http://${shop.addresses.consumer}`);

    // The admin API reads the rules back, as Mesher's /v1/mesher/routeRule/{service} does.
    const rules = (await (await fetch(`http://${shop.addresses.admin}/v1/mesher/routeRule/reviews`)).json()) as Array<{ precedence: number }>;
    expect(rules.map((r) => r.precedence)).toEqual([2, 1]);
    const none = await fetch(`http://${shop.addresses.admin}/v1/mesher/routeRule/ratings`);
    expect(none.status).toBe(404);
    expect(await none.text()).toBe("ratings routeRule not found");
  });

  test("the same rules from Istio VirtualService + DestinationRule, through the CLI", async () => {
    const dir = tempDir();
    copyFileSync(join(FIXTURES, "reviews.yaml"), join(dir, "reviews.yaml"));
    writeFileSync(
      join(dir, "mesher.yaml"),
      [
        "service: {name: productpage}",
        'listen: {consumer: "127.0.0.1:0", admin: "127.0.0.1:0"}',
        "include: [reviews.yaml]",
        "services:",
        "  reviews:",
        "    endpoints:",
        ...reviewsEndpoints.map((e) => `      - {address: "${e.address}", tags: {version: ${e.tags.version}}}`),
        "",
      ].join("\n"),
    );
    const cli = await spawnMesher(["-c", join(dir, "mesher.yaml")]);
    stops.push(() => {
      cli.proc.kill();
      return cli.proc.exited;
    });
    await expectBookinfo(`http://${cli.consumer}`);
  });

  test("a bad included file stops the CLI with the file and field named", async () => {
    const dir = tempDir({
      "vs.yaml": "apiVersion: networking.istio.io/v1\nkind: VirtualService\nspec:\n  hosts: [reviews]\n  http:\n    - directResponse: {status: 503}\n",
      "mesher.yaml": "service: {name: productpage}\ninclude: [vs.yaml]\nservices: {reviews: {endpoints: ['127.0.0.1:1']}}\n",
    });
    const p = Bun.spawn(["bun", join(import.meta.dir, "../src/cli.ts"), "check", "-c", join(dir, "mesher.yaml")], { stdout: "pipe", stderr: "pipe" });
    const [code, stderr] = await Promise.all([p.exited, new Response(p.stderr).text()]);
    expect(code).toBe(1);
    expect(stderr).toContain("invalid config in vs.yaml");
    expect(stderr).toContain("spec.http[0].directResponse");
  });
});

describe("route actions through real sidecars", () => {
  const mirrored: Array<{ path: string; host: string | null; body: string; route: string | null }> = [];
  // The mirror holds every copy unanswered until the end: the main requests must not wait for it.
  const { promise: held, resolve: release } = Promise.withResolvers<void>();
  const mirrorApp: Server<undefined> = startApp(async (req) => {
    mirrored.push({ path: new URL(req.url).pathname, host: req.headers.get("host"), body: await req.text(), route: req.headers.get("x-route") });
    await held;
    return new Response("ignored", { status: 500 });
  });
  let shop: Mesher | undefined;
  afterAll(async () => {
    release();
    await shop?.stop();
    mirrorApp.stop(true);
  });

  test("rewrite, header actions, mirroring and another service, seen at the apps", async () => {
    shop = startSidecar({
      service: { name: "productpage" },
      services: {
        audit: { endpoints: [`127.0.0.1:${mirrorApp.port}`] },
        dead: { endpoints: ["127.0.0.1:1"] }, // a mirror nobody listens on must not fail the request
        ratings: { endpoints: [reviewsEndpoints[2]!.address] },
        reviews: {
          endpoints: reviewsEndpoints,
          routes: [
            {
              name: "api",
              match: { path: { prefix: "/api/" }, method: ["GET", "POST"] },
              rewrite: { prefix: "/" },
              headers: { request: { set: { "x-route": "api" }, remove: ["x-secret"] }, response: { set: { "x-served-by": "mesher" } } },
              route: [{ tags: { version: "v2" } }],
              mirror: [{ service: "audit" }, { service: "dead" }],
            },
            { name: "items", match: { path: { regex: "/items/(\\d+)" } }, rewrite: { regex: { pattern: "^/items/(\\d+)$", substitution: "/v2/items?id=$1" } } },
            { name: "ratings", match: { query: { to: { exact: "ratings" } } }, service: "ratings" },
          ],
        },
      },
    });
    const proxy = `http://${shop.addresses.consumer}`;

    const res = await viaProxy(proxy, "http://reviews/api/reviews/1?x=1", { headers: { "x-secret": "s" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-served-by")).toBe("mesher");
    const seen = (await res.json()) as { app: string; path: string; headers: Record<string, string> };
    expect(seen.app).toBe("v2");
    expect(seen.path).toBe("/reviews/1?x=1");
    expect(seen.headers["x-route"]).toBe("api");
    expect(seen.headers["x-secret"]).toBeUndefined();

    const post = await viaProxy(proxy, "http://reviews/api/rate", { method: "POST", body: "stars=5" });
    expect(post.status).toBe(200);
    expect(((await post.json()) as { bodyBytes: number }).bodyBytes).toBe(7);

    // Both main requests are done while the mirror still holds its copies; wait (bounded) for them to land.
    for (let i = 0; i < 300 && mirrored.length < 2; i++) await Bun.sleep(10);
    expect(mirrored).toEqual([
      { path: "/reviews/1", host: "audit-shadow", body: "", route: "api" },
      { path: "/rate", host: "audit-shadow", body: "stars=5", route: "api" },
    ]);

    const items = (await (await viaProxy(proxy, "http://reviews/items/42")).json()) as { path: string };
    expect(items.path).toBe("/v2/items?id=42");
    const other = (await (await viaProxy(proxy, "http://reviews/x?to=ratings")).json()) as { app: string };
    expect(other.app).toBe("v3");
    expect(mirrored).toHaveLength(2); // only the "api" rule mirrors
  });
});
