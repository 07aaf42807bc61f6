import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { ConfigError } from "../errors.ts";
import { expandIncludes } from "../include.ts";
import { resolveConfig } from "../resolve.ts";
import { importers, translateDocument } from "./index.ts";

const FIXTURES = join(import.meta.dir, "../../../test/fixtures/routing");
const BASE = { service: { name: "productpage" }, services: { reviews: { endpoints: ["127.0.0.1:1"] } } };

function dir(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), "mesher-compat-"));
  for (const [n, t] of Object.entries(files)) writeFileSync(join(d, n), t);
  return d;
}

/** Expands `include` for a config written next to `files`; returns the raw result. */
async function expand(include: string[], files: Record<string, string> = {}, base: object = BASE): Promise<any> {
  const d = dir(files);
  return expandIncludes({ ...base, include }, join(d, "mesher.config.json"));
}

async function errorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error("no error");
}

const jasonAndSplit = (names: [string, string] | undefined, precedences: [number, number]) => [
  {
    ...(names ? { name: names[0] } : {}),
    precedence: precedences[0],
    match: { headers: { "end-user": { exact: "jason" } } },
    route: [{ tags: { version: "v3" }, ...(names ? {} : { weight: 100 }) }],
  },
  {
    ...(names ? { name: names[1] } : {}),
    precedence: precedences[1],
    match: {},
    route: [
      { tags: { version: "v1" }, weight: 80 },
      { tags: { version: "v2" }, weight: 20 },
    ],
  },
];

describe("Mesher router.yaml", () => {
  test("routeRule map translates rule for rule", () => {
    const f = translateDocument(parse(`
routeRule:
  ShoppingCart:
    - precedence: 2
      match:
        source: vmall
        sourceTags: {version: 1.0}
        headers:
          cookie: {regex: "user=jason"}
          X-Age: {greater: 18, caseInsensitive: "true"}
      route:
        - {tags: {version: "0.2", app: HelloWorld}, weight: 80}
        - {tags: {version: "1.2", debug: true}, weight: 20}
`), "router.yaml", 0);
    expect(f).toEqual({
      services: {
        ShoppingCart: {
          routes: [
            {
              precedence: 2,
              match: {
                source: "vmall",
                sourceTags: { version: "1" },
                headers: { cookie: { regex: ".*(?:user=jason).*" }, "X-Age": { greater: 18, caseInsensitive: "true" } },
              },
              route: [
                { tags: { version: "0.2", app: "HelloWorld" }, weight: 80 },
                { tags: { version: "1.2", debug: "true" }, weight: 20 },
              ],
            },
          ],
        },
      },
    });
  });

  test("servicecomb.routeRule.<service> YAML strings, nested or flat", () => {
    const rules = "- precedence: 1\n  route:\n    - tags: {version: v2}\n      weight: 100\n";
    const nested = translateDocument({ servicecomb: { routeRule: { reviews: rules } } }, "f.yaml", 0);
    const flat = translateDocument({ "servicecomb.routeRule.reviews": rules }, "f.yaml", 0);
    const want = { services: { reviews: { routes: [{ precedence: 1, route: [{ tags: { version: "v2" }, weight: 100 }] }] } } };
    expect(nested).toEqual(want);
    expect(flat).toEqual(want);
  });

  test("the fixture resolves to the same rules the Istio fixture gives", async () => {
    const raw = await expandIncludes({ ...BASE, include: ["router.yaml"] }, join(FIXTURES, "mesher.config.json"));
    const config = resolveConfig(raw);
    expect(config.services.reviews!.routes).toEqual(resolveConfig({ ...BASE, services: { reviews: { endpoints: ["127.0.0.1:1"], routes: jasonAndSplit(undefined, [2, 1]) } } }).services.reviews!.routes);
  });

  test("what cannot be translated names the file and field", async () => {
    expect(await errorOf(expand(["r.yaml"], { "r.yaml": "routeRule:\n  reviews:\n    - match:\n        refer: vip\n" }))).toContain(
      "in r.yaml (1 problem):\n  - routeRule.reviews[0].match.refer: nothing here: match policies",
    );
    expect(await errorOf(expand(["r.yaml"], { "r.yaml": "router: {infra: pilotv2}\nrouteRule: {}\n" }))).toContain("router.infra");
    expect(await errorOf(expand(["r.yaml"], { "r.yaml": "routeRule:\n  reviews:\n    - route: [{tags: {version: v1}, weight: 80, extra: 1}]\n" }))).toContain(
      "routeRule.reviews[0].route[0].extra",
    );
  });
});

describe("Istio VirtualService + DestinationRule", () => {
  test("bookinfo reviews: subsets become tags, http[] order is kept", async () => {
    const raw = await expandIncludes({ ...BASE, include: ["reviews.yaml"] }, join(FIXTURES, "mesher.config.json"));
    const config = resolveConfig(raw);
    expect(config.services.reviews!.routes).toEqual(resolveConfig({ ...BASE, services: { reviews: { endpoints: ["127.0.0.1:1"], routes: jasonAndSplit(["jason", "split"], [0, 0]) } } }).services.reviews!.routes);
  });

  test("every supported HTTPRoute field", async () => {
    const raw = await expand(["vs.yaml", "dr.yaml"], {
      "vs.yaml": `
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings.prod.svc.cluster.local]
  gateways: [mesh]
  http:
    - match:
        - uri: {prefix: /api/v1/}
          ignoreUriCase: true
          method: {exact: GET}
          queryParams: {debug: {exact: "1"}}
          withoutHeaders: {x-skip: {}}
          sourceLabels: {app: productpage}
        - uri: {regex: "/items/\\\\d+"}
      rewrite: {uri: /}
      headers:
        request: {set: {x-a: "1"}, add: {x-b: "2"}, remove: [x-c]}
        response: {set: {x-served: mesh}}
      timeout: 1.5s
      retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx,connect-failure,refused-stream,503"}
      fault:
        delay: {fixedDelay: 7s, percentage: {value: 10}}
        abort: {httpStatus: 500, percent: 5}
      mirror: {host: ratings, subset: v2}
      mirrorPercentage: {value: 50}
      route:
        - destination: {host: ratings, subset: v1, port: {number: 9080}}
          weight: 3
        - destination: {host: reviews}
          weight: 1
    - route:
        - destination: {host: ratings}
      fault: {abort: {httpStatus: 503}}
      rewrite:
        uriRegexRewrite: {match: "^/old/(.*)$", rewrite: "/new/\\\\1"}
`,
      "dr.yaml": `
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
`,
    }, { service: { name: "productpage" }, services: { reviews: { endpoints: ["127.0.0.1:1"] }, ratings: { endpoints: ["127.0.0.1:2"] } } });
    const rules = resolveConfig(raw).services.ratings!.routes;
    expect(rules[0]).toMatchObject({
      name: "ratings.http[0]",
      precedence: 0,
      match: [
        {
          path: { prefix: "/api/v1/", caseInsensitive: true },
          method: ["GET"],
          query: { debug: { exact: "1" } },
          withoutHeaders: { "x-skip": {} },
          sourceTags: { app: "productpage" },
        },
        { path: { regex: "/items/\\d+" } },
      ],
      rewrite: { prefix: "/" },
      headers: { request: { set: { "x-a": "1" }, add: { "x-b": "2" }, remove: ["x-c"] }, response: { set: { "x-served": "mesh" } } },
      timeout: 1500,
      retry: { attempts: 3, perTryTimeout: 500, on: ["5xx", "connect-failure", "reset", "retriable-status-codes"], statusCodes: [503] },
      fault: { delay: { fixedDelay: 7000, percent: 10 }, abort: { httpStatus: 500, percent: 5 } },
      mirror: [{ service: "ratings", tags: { version: "v2" }, percent: 50 }],
      route: [
        { tags: { version: "v1" }, weight: 75 },
        { tags: {}, weight: 25, service: "reviews" },
      ],
    });
    expect(rules[1]).toMatchObject({ fault: { abort: { httpStatus: 503, percent: 0 } }, rewrite: { regex: { pattern: "^/old/(.*)$", substitution: "/new/$1" } }, route: [{ tags: {} }] });
  });

  test("DestinationRule traffic policy goes to loadBalancer and outlierDetection", () => {
    const f = translateDocument(parse(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    outlierDetection: {consecutive5xxErrors: 5, consecutiveGatewayErrors: 3, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50}
  subsets:
    - {name: v1, labels: {version: v1}}
`), "dr.yaml", 0);
    expect(f).toEqual({
      services: {
        reviews: {
          subsets: { v1: { version: "v1" } },
          loadBalancer: "leastRequest",
          outlierDetection: { consecutive5xx: 5, consecutiveGatewayErrors: 3, baseEjectionTime: 30000, maxEjectionPercent: 50 },
        },
      },
    });
    const ch = translateDocument({ apiVersion: "networking.istio.io/v1", kind: "DestinationRule", spec: { host: "r", trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: "x-user" } } } } }, "dr.yaml", 0);
    expect(ch.services!.r!.loadBalancer).toEqual({ kind: "consistentHash", header: "x-user" });
    // Both translations are valid service settings.
    const { subsets: _subsets, ...reviews } = (f.services as Record<string, Record<string, unknown>>).reviews!;
    const resolved = resolveConfig({ service: { name: "shop" }, services: { reviews, r: ch.services!.r! } });
    expect(resolved.services.reviews!.outlierDetection!.consecutiveGatewayErrors).toBe(3);
    expect(resolved.services.r!.loadBalancer).toMatchObject({ kind: "consistentHash", header: "x-user" });
  });

  test("untranslatable fields are errors naming file and field", async () => {
    const vs = (http: string) => `apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [reviews]\n  http:\n${http}`;
    expect(await errorOf(expand(["vs.yaml"], { "vs.yaml": vs("    - redirect: {uri: /x}\n") }))).toContain("in vs.yaml (1 problem):\n  - spec.http[0].redirect: nothing here: redirects");
    expect(await errorOf(expand(["vs.yaml"], { "vs.yaml": vs("    - route: [{destination: {host: reviews, subset: v9}}]\n") }))).toContain(
      "vs.yaml: spec.http[0].route[0].destination.subset: a subset defined by a DestinationRule for host reviews",
    );
    expect(await errorOf(expand(["vs.yaml"], { "vs.yaml": vs("    - match: [{scheme: {exact: https}}]\n      route: [{destination: {host: reviews}}]\n") }))).toContain("spec.http[0].match[0].scheme");
    expect(await errorOf(expand(["vs.yaml"], { "vs.yaml": vs("    - route:\n        - {destination: {host: reviews}, weight: 1}\n        - {destination: {host: reviews}, weight: 2}\n") }))).toContain("spec.http[0].route: weights that sum to 100");
    expect(await errorOf(expand(["vs.yaml"], { "vs.yaml": vs("    - retries: {attempts: 2, retryOn: unavailable}\n      route: [{destination: {host: reviews}}]\n") }))).toContain("spec.http[0].retries.retryOn");
    expect(await errorOf(expand(["vs.yaml"], { "vs.yaml": vs("    - route: [{destination: {host: reviews}}]\n").replace("hosts: [reviews]", "hosts: [reviews]\n  gateways: [public-gw]") }))).toContain("spec.gateways");
    expect(await errorOf(expand(["dr.yaml"], { "dr.yaml": "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nspec:\n  host: reviews\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n" }))).toContain("spec.trafficPolicy.tls");
  });
});

describe("include", () => {
  test("several files and documents merge: routes appended, own rules first", async () => {
    const raw = await expand(["a.yaml", "b.yaml"], {
      "a.yaml": "routeRule:\n  reviews:\n    - route: [{tags: {version: v1}}]\n---\nrouteRule:\n  ratings:\n    - route: [{tags: {version: v2}}]\n",
      "b.yaml": "routeRule:\n  reviews:\n    - route: [{tags: {version: v3}}]\n",
    }, { service: { name: "p" }, services: { reviews: { routes: [{ name: "own" }] } } });
    expect(raw.services.reviews.routes.map((r: any) => r.name ?? r.route[0].tags.version)).toEqual(["own", "v1", "v3"]);
    expect(raw.services.ratings.routes).toHaveLength(1);
  });

  test("the same key set twice to different values is an error naming both files", async () => {
    const dr = (simple: string) => `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nspec:\n  host: reviews\n  trafficPolicy: {loadBalancer: {simple: ${simple}}}\n`;
    expect(await errorOf(expand(["a.yaml", "b.yaml"], { "a.yaml": dr("RANDOM"), "b.yaml": dr("ROUND_ROBIN") }))).toContain(
      'in b.yaml (1 problem):\n  - services.reviews.loadBalancer: one value (a.yaml sets "random")',
    );
  });

  test("a missing file, an unknown document, broken YAML", async () => {
    expect(await errorOf(expand(["nope.yaml"]))).toContain("include[0]: an existing file");
    expect(await errorOf(expand(["x.yaml"], { "x.yaml": "kind: Gateway\n" }))).toContain("in x.yaml (1 problem):\n  - document 1:");
    expect(await errorOf(expand(["x.yaml"], { "x.yaml": "routeRule: [\n" }))).toContain("valid YAML");
  });

  test("the registry is open: importers is a plain list", () => {
    expect(importers.map((i) => i.name)).toEqual([
      "mesher router.yaml (routeRule, servicecomb.routeRule.<service>)",
      "Istio VirtualService",
      "Istio DestinationRule",
      "Mesher mesher.yaml (ingress rules)",
      "Envoy v3 static bootstrap",
      "Mesher egress.yaml",
    ]);
  });
});

describe("include of Mesher's mesher.yaml and an Envoy bootstrap", () => {
  const envoy = `static_resources:
  listeners:
  - address: {socket_address: {address: 127.0.0.1, port_value: 30080}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - {match: {prefix: "/service/1"}, route: {cluster: service1}}
          http_filters:
          - name: envoy.filters.http.router
  clusters:
  - name: service1
    load_assignment:
      cluster_name: service1
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 8081}}}}]}]
`;
  const mesherYaml = `mesher:
  ingress:
    rule:
      http: |
        - apiPath: /shop/.*
          service: {name: shop, redirectPath: /items}
`;

  test("ingress rules are appended in order and listen is merged key by key", async () => {
    const out = await expand(["mesher.yaml", "envoy.yaml"], { "mesher.yaml": mesherYaml, "envoy.yaml": envoy }, {
      ...BASE,
      listen: { admin: "127.0.0.1:30102" },
      ingress: [{ apiPath: "^/own", service: "own" }],
    });
    expect(out.ingress.map((r: { service: unknown }) => r.service)).toEqual(["own", "shop", "service1"]);
    expect(out.listen).toEqual({ admin: "127.0.0.1:30102", edge: "127.0.0.1:30080" });
    const resolved = resolveConfig({ ...out, mode: "edge" });
    expect(resolved.ingress).toHaveLength(3);
    expect(resolved.services.service1!.endpoints).toEqual(["127.0.0.1:8081"]);
  });

  test("two files setting the same listen key differently is an error naming both", async () => {
    const other = envoy.replace("port_value: 30080", "port_value: 30081");
    expect(await errorOf(expand(["a.yaml", "b.yaml"], { "a.yaml": envoy, "b.yaml": other }))).toContain("listen.edge");
  });
});
