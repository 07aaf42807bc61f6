import { describe, expect, test } from "bun:test";
import { parse } from "yaml";
import { compileIngress } from "../../listeners/ingress.ts";
import { ConfigError } from "../errors.ts";
import { resolveConfig } from "../resolve.ts";
import { envoyBootstrap, importEnvoy } from "./envoy.ts";

const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

/** A bootstrap with one listener holding these virtual hosts, and these clusters. */
function bootstrap(virtualHosts: unknown[], clusters: unknown[], extra: Record<string, unknown> = {}) {
  return {
    static_resources: {
      listeners: [
        {
          name: "main",
          address: { socket_address: { address: "0.0.0.0", port_value: 8080 } },
          filter_chains: [
            {
              filters: [
                {
                  name: "envoy.filters.network.http_connection_manager",
                  typed_config: {
                    "@type": HCM,
                    stat_prefix: "ingress_http",
                    route_config: { name: "local_route", virtual_hosts: virtualHosts },
                    http_filters: [{ name: "envoy.filters.http.router" }],
                    ...extra,
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters,
    },
  };
}

const cluster = (name: string, port: number, more: Record<string, unknown> = {}) => ({
  name,
  type: "STATIC",
  connect_timeout: "0.25s",
  load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "10.0.0.1", port_value: port } } } }] }] },
  ...more,
});

function problemOf(doc: unknown): string {
  try {
    importEnvoy(doc, "envoy.yaml");
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain("envoy.yaml");
    const p = (err as ConfigError).problems[0]!;
    return `${p.path}: ${p.expected}`;
  }
  throw new Error("expected a ConfigError");
}

describe("Envoy bootstrap import", () => {
  test("the front-proxy shape: prefix routes to clusters, endpoints, listener and admin addresses", () => {
    const text = Bun.file(`${import.meta.dir}/../../../test/fixtures/envoy/front-proxy.yaml`);
    return text.text().then((yaml) => {
      const doc = parse(yaml.replaceAll("SERVICE1_PORT", "8001").replaceAll("SERVICE2_PORT", "8002"));
      expect(envoyBootstrap.detect(doc)).toBe(true);
      const partial = importEnvoy(doc, "front-proxy.yaml");
      expect(partial).toEqual({
        mode: "edge",
        listen: { edge: "127.0.0.1:0", admin: "127.0.0.1:0" },
        ingress: [
          { service: "service1", path: { prefix: "/service/1" } },
          { service: "service2", path: { prefix: "/service/2" } },
        ],
        services: { service1: { endpoints: ["localhost:8001"] }, service2: { endpoints: ["127.0.0.1:8002"] } },
      });
      // What the importer produces passes mesher's own schema.
      expect(resolveConfig({ service: { name: "front" }, ...partial }).ingress).toHaveLength(2);
    });
  });

  test("virtual hosts are ordered as Envoy picks them: exact, *.suffix, prefix.*, *", () => {
    const doc = bootstrap(
      [
        { name: "any", domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: "fallback" } }] },
        { name: "wild", domains: ["*.example.com"], routes: [{ match: { prefix: "/" }, route: { cluster: "wild" } }] },
        { name: "exact", domains: ["api.example.com", "api.example.com:8080"], routes: [{ match: { prefix: "/" }, route: { cluster: "api" } }] },
      ],
      [cluster("fallback", 1), cluster("wild", 2), cluster("api", 3)],
    );
    const partial = importEnvoy(doc, "e.yaml");
    const t = compileIngress(resolveConfig({ service: { name: "gw" }, ...partial }).ingress);
    expect(t.match("api.example.com", "/x", new Headers())?.service).toBe("api");
    expect(t.match("www.example.com", "/x", new Headers())?.service).toBe("wild");
    expect(t.match("other.org", "/x", new Headers())?.service).toBe("fallback");
  });

  test("path, safe_regex, headers, rewrites and weighted clusters", () => {
    const doc = bootstrap(
      [
        {
          domains: ["*"],
          routes: [
            { match: { path: "/exact" }, route: { cluster: "a", prefix_rewrite: "/other" } },
            { match: { safe_regex: { google_re2: {}, regex: "/users/[0-9]+" } }, route: { cluster: "a", regex_rewrite: { pattern: { regex: "^/users/(\\d+)$" }, substitution: "/u/\\1" } } },
            { match: { prefix: "/api", headers: [{ name: "x-canary", string_match: { exact: "yes" } }, { name: "x-debug", present_match: true, invert_match: true }] }, route: { cluster: "b", prefix_rewrite: "/" } },
            { match: { prefix: "/split", case_sensitive: false }, route: { weighted_clusters: { clusters: [{ name: "a", weight: 75 }, { name: "b", weight: { value: 25 } }] } } },
          ],
        },
      ],
      [cluster("a", 1, { lb_policy: "RANDOM" }), cluster("b", 2, { lb_policy: "LEAST_REQUEST" })],
    );
    const partial = importEnvoy(doc, "e.yaml");
    expect(partial.ingress).toEqual([
      { service: "a", path: { exact: "/exact" }, redirectPath: "/other" },
      { service: "a", path: { regex: "/users/[0-9]+" }, rewrite: { regex: "^/users/(\\d+)$", substitution: "/u/\\1" } },
      {
        service: "b",
        path: { prefix: "/api" },
        headers: [{ name: "x-canary", exact: "yes", invert: false }, { name: "x-debug", present: true, invert: true }],
        rewrite: { prefix: "/" },
      },
      { service: [{ name: "a", weight: 75 }, { name: "b", weight: 25 }], path: { prefix: "/split" }, caseSensitive: false },
    ]);
    expect(partial.services).toEqual({
      a: { loadBalancer: "random", endpoints: ["10.0.0.1:1"] },
      b: { loadBalancer: "leastRequest", endpoints: ["10.0.0.1:2"] },
    } as never);
    const t = compileIngress(resolveConfig({ service: { name: "gw" }, ...partial, services: {} }).ingress);
    expect(t.match(null, "/users/7", new Headers())?.path).toBe("/u/7");
    expect(t.match(null, "/api/v1", new Headers({ "x-canary": "yes" }))?.path).toBe("/v1");
    expect(t.match(null, "/api/v1", new Headers({ "x-canary": "yes", "x-debug": "1" }))).toBeUndefined();
    expect(t.match(null, "/SPLIT/x", new Headers())?.service).toMatch(/^[ab]$/);
  });

  test("RING_HASH becomes consistentHash on the routes' hash_policy; endpoint weights carry over", () => {
    const doc = bootstrap(
      [{ domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: "c", hash_policy: [{ header: { header_name: "x-user" } }] } }] }],
      [
        {
          ...cluster("c", 1, { lb_policy: "RING_HASH" }),
          load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "10.0.0.9", port_value: 80 } } }, load_balancing_weight: 3 }] }] },
        },
      ],
    );
    expect(importEnvoy(doc, "e.yaml").services).toEqual({
      c: { loadBalancer: { kind: "consistentHash", header: "x-user" }, endpoints: [{ address: "10.0.0.9:80", weight: 3 }] },
    } as never);
  });

  test("what mesher does not support is a ConfigError naming the field", () => {
    const vh = (routes: unknown[]) => [{ domains: ["*"], routes }];
    const ok = [cluster("a", 1)];
    const to = { cluster: "a" };
    expect(problemOf(bootstrap(vh([{ match: { prefix: "/", query_parameters: [] }, route: to }]), ok))).toContain(
      "virtual_hosts[0].routes[0].match.query_parameters: a field mesher can import",
    );
    expect(problemOf(bootstrap(vh([{ match: { prefix: "/" }, route: { ...to, timeout: "5s" } }]), ok))).toContain("routes[0].route.timeout");
    expect(problemOf(bootstrap(vh([{ match: { prefix: "/" }, redirect: { path_redirect: "/x" } }]), ok))).toContain("routes[0].redirect");
    expect(problemOf(bootstrap(vh([{ match: { prefix: "/" }, route: { cluster: "nope" } }]), ok))).toContain("a cluster defined in static_resources.clusters");
    expect(problemOf(bootstrap(vh([{ match: { prefix: "/" }, route: to }]), [cluster("a", 1, { type: "EDS" })]))).toContain("clusters[0].type");
    expect(problemOf(bootstrap(vh([{ match: { prefix: "/" }, route: to }]), [cluster("a", 1, { health_checks: [] })]))).toContain("clusters[0].health_checks");
    expect(problemOf(bootstrap(vh([{ match: { prefix: "/" }, route: to }]), [cluster("a", 1, { lb_policy: "RING_HASH" })]))).toContain("clusters[0].lb_policy: a hash_policy");
    const withFilter = bootstrap(vh([{ match: { prefix: "/" }, route: to }]), ok);
    (withFilter.static_resources.listeners[0]!.filter_chains[0]!.filters[0]!.typed_config as Record<string, unknown>).http_filters = [
      { name: "envoy.filters.http.jwt_authn" },
      { name: "envoy.filters.http.router" },
    ];
    expect(problemOf(withFilter)).toContain("http_filters[0].name: envoy.filters.http.router");
    const twoListeners = bootstrap(vh([{ match: { prefix: "/" }, route: to }]), ok);
    twoListeners.static_resources.listeners.push(twoListeners.static_resources.listeners[0]!);
    expect(problemOf(twoListeners)).toContain("static_resources.listeners[1]: one listener");
    expect(problemOf({ ...bootstrap([], ok), dynamic_resources: {} })).toContain("dynamic_resources");
  });
});
