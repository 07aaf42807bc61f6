import { expect, test } from "bun:test";
import * as v from "valibot";
import type { Cluster } from "../../upstream/cluster.ts";
import { makeEndpoint } from "../../upstream/cluster.ts";
import { compileRules, destinationsOf } from "./compile.ts";
import { compareVersions, latestResolver } from "./latest.ts";
import { RouteRuleSchema, type RouteRuleInput } from "./schema.ts";

const rules = (...r: RouteRuleInput[]) => compileRules(r.map((x) => v.parse(RouteRuleSchema, x)));

test("a mirror at 30% copies exactly 3 requests in every 10", () => {
  const [rule] = rules({ mirror: { service: "audit", percent: 30 } });
  const m = rule!.mirrors[0]!;
  const taken = Array.from({ length: 100 }, () => m.take());
  expect(taken.filter(Boolean).length).toBe(30);
  for (let i = 0; i < 100; i += 10) expect(taken.slice(i, i + 10).filter(Boolean).length).toBe(3);
});

test("destinations: no weights share equally, weights under 100 add version latest", () => {
  expect(destinationsOf([{ tags: { version: "v1" } }, { tags: { version: "v2" } }])!.weights).toEqual([1, 1]);
  expect(destinationsOf([{ tags: { version: "v1" }, weight: 60 }])).toEqual({
    items: [{ tags: { version: "v1" }, service: undefined }, { tags: { version: "latest" } }],
    weights: [60, 40],
  });
  expect(destinationsOf([])).toBeUndefined();
});

test("versions compare numerically; latest is the newest tag, or an endpoint tagged latest", () => {
  expect(compareVersions("1.10.0", "1.9.3")).toBeGreaterThan(0);
  expect(compareVersions("v2", "v10")).toBeLessThan(0);
  expect(compareVersions("1.0", "1.0.1")).toBeLessThan(0);
  const cluster: Cluster = { name: "r", revision: 1, endpoints: ["1.9.3", "1.10.0", "1.2"].map((ver, i) => makeEndpoint(`h:${i + 1}`, { tags: { version: ver } })) };
  const latest = latestResolver();
  expect(latest(cluster)).toBe("1.10.0");
  cluster.endpoints.push(makeEndpoint("h:9", { tags: { version: "latest" } }));
  expect(latest(cluster)).toBe("1.10.0"); // cached until the revision changes
  cluster.revision++;
  expect(latest(cluster)).toBe("latest");
});
