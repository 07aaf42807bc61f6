import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { tempDir } from "../../../test/helpers.ts";
import { expandIncludes } from "../include.ts";
import { compileEgress } from "../../egress/match.ts";
import { ConfigError } from "../errors.ts";
import { resolveConfig } from "../resolve.ts";
import { importEgressYaml } from "./egress.ts";

const MESHER_SAMPLE = `
egress:
  infra: cse # pilot or cse
  address: http://istio-pilot.istio-system:15010
egressRule:
  google-ext:
    - hosts:
        - "www.google.com"
        - "*.yahoo.com"
      ports:
        - port: 80
          protocol: HTTP
  facebook-ext:
    - hosts:
        - "www.facebook.com"
      ports:
        - port: 443
          protocol: https
`;

describe("importEgressYaml", () => {
  test("Mesher's sample file becomes egress rules that resolve and match", () => {
    const partial = importEgressYaml(parse(MESHER_SAMPLE), "egress.yaml");
    expect(partial.egress).toEqual([
      { name: "google-ext", hosts: ["www.google.com", "*.yahoo.com"], ports: [{ port: 80, protocol: "HTTP" }] },
      { name: "facebook-ext", hosts: ["www.facebook.com"], ports: [{ port: 443, protocol: "HTTPS" }] },
    ]);
    const config = resolveConfig({ service: { name: "shop" }, ...partial });
    const table = compileEgress(config.egress);
    expect(table.match("a.b.yahoo.com", undefined, "http")?.address).toBe("a.b.yahoo.com:80");
    expect(table.match("xyahooycom", undefined, "http")).toBeUndefined(); // Mesher's regexp matched this
    expect(table.match("www.facebook.com", 443, "connect")?.rule).toBe("facebook-ext");
    expect(table.match("www.google.com", 443, "connect")).toBeUndefined();
  });

  test("a rule without ports gets Mesher's default, 80/HTTP", () => {
    const r = importEgressYaml({ egressRule: { x: [{ hosts: ["a.example.com"] }] } }, "e.yaml");
    expect(r.egress[0]!.ports).toEqual([{ port: 80, protocol: "HTTP" }]);
  });

  test("an empty file imports nothing", () => {
    expect(importEgressYaml(null, "e.yaml")).toEqual({ egress: [] });
  });

  test("problems name the file, the field and what was expected", () => {
    let err: ConfigError | undefined;
    try {
      importEgressYaml(
        {
          egress: { infra: "pilot" },
          egressRule: { bad: [{ hosts: [] }, { hosts: ["ok.com", "no_underscores.com"], ports: [{ port: 70000 }, { port: 1, protocol: "UDP" }] }] },
          extra: 1,
        },
        "conf/egress.yaml",
      );
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const paths = err!.problems.map((p) => p.path);
    expect(paths).toEqual([
      "extra",
      "egress.infra",
      "egressRule.bad[0].hosts",
      "egressRule.bad[1].hosts[1]",
      "egressRule.bad[1].ports[0].port",
      "egressRule.bad[1].ports[1].protocol",
    ]);
    expect(err!.message).toContain("conf/egress.yaml");
  });
});

describe("egress.yaml through include", () => {
  test("is detected and appended to the config's own rules, in either egress shape", async () => {
    const d = tempDir({ "egress.yaml": MESHER_SAMPLE });
    for (const own of [[{ hosts: ["own.example.com"] }], { allowAll: false, rules: [{ hosts: ["own.example.com"] }] }]) {
      const raw = await expandIncludes({ service: { name: "shop" }, egress: own, include: ["egress.yaml"] }, join(d, "mesher.config.json"));
      const config = resolveConfig(raw);
      expect(config.egress.rules.map((r) => r.name ?? r.hosts[0])).toEqual(["own.example.com", "google-ext", "facebook-ext"]);
    }
  });

  test("an unsupported infra is an error naming the included file", async () => {
    const d = tempDir();
    writeFileSync(join(d, "egress.yaml"), "egress:\n  infra: pilot\n");
    let message = "";
    try {
      await expandIncludes({ service: { name: "shop" }, include: ["egress.yaml"] }, join(d, "mesher.config.json"));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("egress.yaml");
    expect(message).toContain("egress.infra");
  });
});
