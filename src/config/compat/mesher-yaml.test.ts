import { describe, expect, test } from "bun:test";
import { parse } from "yaml";
import { compileIngress } from "../../listeners/ingress.ts";
import { ConfigError } from "../errors.ts";
import { resolveConfig } from "../resolve.ts";
import { importMesherYaml } from "./mesher-yaml.ts";

// As Mesher's conf/mesher.yaml writes it: the rules are a YAML string.
const MESHER_YAML = `
mesher:
  ingress:
    type: servicecomb
    rule:
      http: |
        - host: example.com
          limit: 30
          apiPath: /some/api
          service:
            name: example
            tags: {}
            redirectPath: /another/api
            port:
              name: http-legacy
              value: "8080"
        - apiPath: /users/(?P<id>[0-9]+)
          service:
            name: users
localHealthCheck:
  - port: "8080"
    protocol: rest
`;

describe("mesher.yaml ingress import", () => {
  test("rules in a YAML string become ingress rules that route as Mesher's", () => {
    const partial = importMesherYaml(parse(MESHER_YAML), "mesher.yaml");
    expect(partial.ingress).toEqual([
      { host: "example.com", apiPath: "/some/api", service: "example", redirectPath: "/another/api", port: "8080" },
      { apiPath: "/users/(?<id>[0-9]+)", service: "users" },
    ]);
    const config = resolveConfig({ service: { name: "gw" }, mode: "edge", ...partial });
    const t = compileIngress(config.ingress);
    expect(t.match("example.com", "/v1/some/api?x", new Headers())).toMatchObject({ service: "example", path: "/another/api?x", port: "8080" });
    expect(t.match("other.com", "/some/api", new Headers())).toBeUndefined();
    expect(t.match("other.com", "/users/42", new Headers())?.service).toBe("users");
  });

  test("a list instead of a string is read too; no ingress section gives nothing", () => {
    const doc = { mesher: { ingress: { rule: { http: [{ apiPath: "/", service: { name: "a" } }] } } } };
    expect(importMesherYaml(doc, "m.yaml").ingress).toEqual([{ apiPath: "/", service: "a" }]);
    expect(importMesherYaml({ localHealthCheck: [] }, "m.yaml")).toEqual({});
  });

  test("what cannot be read is a ConfigError naming the field and the file", () => {
    const doc = {
      mesher: {
        ingress: {
          type: "kong",
          rule: { http: "- apiPath: /a\n  service: { nme: a }\n- apiPath: /b\n  service: { name: b, port: { value: abc } }\n  weight: 3" },
        },
      },
    };
    let err: ConfigError | undefined;
    try {
      importMesherYaml(doc, "conf/mesher.yaml");
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.message).toContain("conf/mesher.yaml");
    const paths = err!.problems.map((p) => p.path);
    expect(paths).toContain("mesher.ingress.type");
    expect(paths).toContain("mesher.ingress.rule.http[0].service.name");
    expect(paths).toContain("mesher.ingress.rule.http[1].service.port.value");
    expect(paths).toContain("mesher.ingress.rule.http[1].weight");
  });
});
