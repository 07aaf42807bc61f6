/**
 * Imports ServiceComb Mesher's `mesher.yaml` ingress rules as they are:
 *
 *   mesher:
 *     ingress:
 *       type: servicecomb
 *       rule:
 *         http: |            # a YAML string (Mesher's archaius key mesher.ingress.rule.http)
 *           - host: example.com
 *             apiPath: /some/api
 *             service: { name: example, redirectPath: /another/api, port: { name: http, value: "8080" } }
 *
 * into mesher's `ingress` list. `limit` and `service.tags` are declared by Mesher but unused by
 * its gateway, so they are read and ignored here too. Other sections of mesher.yaml
 * (localHealthCheck, admin, plugin, pprof, servicecomb.apm) are left to their own importers.
 */
import { parse as parseYaml } from "yaml";
import { ConfigError, type ConfigProblem } from "../errors.ts";
import type { UserConfig } from "../schema.ts";

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => x !== null && typeof x === "object" && !Array.isArray(x);

const RULE_KEYS = new Set(["host", "limit", "apiPath", "service"]);
const SERVICE_KEYS = new Set(["name", "tags", "redirectPath", "port"]);

/** Go's regexp writes named groups (?P<name>...); JavaScript wants (?<name>...). */
export function goRegexToJs(source: string): string {
  return source.replace(/\(\?P</g, "(?<");
}

export function importMesherYaml(doc: unknown, file: string): Partial<UserConfig> {
  const problems: ConfigProblem[] = [];
  const fail = (path: string, value: unknown, expected: string) => problems.push({ path, value, expected });
  const mesher = isObj(doc) ? doc.mesher : undefined;
  if (mesher === undefined) return {};
  if (!isObj(mesher)) throw new ConfigError([{ path: "mesher", value: mesher, expected: "a mapping" }], file);
  const ingress = mesher.ingress;
  if (ingress === undefined) return {};
  if (!isObj(ingress)) throw new ConfigError([{ path: "mesher.ingress", value: ingress, expected: "a mapping" }], file);
  if (ingress.type !== undefined && ingress.type !== "servicecomb") {
    fail("mesher.ingress.type", ingress.type, 'the "servicecomb" ingress plugin (the only one mesher reads)');
  }
  const rule = ingress.rule;
  if (rule !== undefined && !isObj(rule)) fail("mesher.ingress.rule", rule, "a mapping with http");
  let list: unknown = isObj(rule) ? rule.http : undefined;
  if (typeof list === "string") {
    try {
      list = parseYaml(list) ?? [];
    } catch (err) {
      fail("mesher.ingress.rule.http", "(YAML text)", `valid YAML (${(err as Error).message})`);
      list = [];
    }
  }
  list ??= [];
  if (!Array.isArray(list)) {
    fail("mesher.ingress.rule.http", list, "a list of rules (or YAML text of one)");
    list = [];
  }
  if (isObj(rule)) {
    for (const key of Object.keys(rule)) {
      if (key !== "http") fail(`mesher.ingress.rule.${key}`, rule[key], "only http rules (mesher's edge serves HTTP)");
    }
  }

  const out: NonNullable<UserConfig["ingress"]> = [];
  (list as unknown[]).forEach((r, i) => {
    const at = `mesher.ingress.rule.http[${i}]`;
    if (!isObj(r)) return void fail(at, r, "a rule { host?, apiPath, service }");
    for (const key of Object.keys(r)) if (!RULE_KEYS.has(key)) fail(`${at}.${key}`, r[key], "a known field (host, limit, apiPath, service)");
    const s = r.service;
    if (!isObj(s) || typeof s.name !== "string") return void fail(`${at}.service.name`, isObj(s) ? s.name : s, "a service name");
    for (const key of Object.keys(s)) if (!SERVICE_KEYS.has(key)) fail(`${at}.service.${key}`, s[key], "a known field (name, tags, redirectPath, port)");
    const rule: NonNullable<UserConfig["ingress"]>[number] = { service: s.name };
    if (r.host !== undefined && r.host !== "") {
      if (typeof r.host !== "string") fail(`${at}.host`, r.host, "a host name");
      else rule.host = r.host;
    }
    if (r.apiPath !== undefined) {
      if (typeof r.apiPath !== "string") fail(`${at}.apiPath`, r.apiPath, "a regular expression");
      else rule.apiPath = goRegexToJs(r.apiPath);
    }
    if (s.redirectPath !== undefined && s.redirectPath !== "") {
      if (typeof s.redirectPath !== "string") fail(`${at}.service.redirectPath`, s.redirectPath, "a path");
      else rule.redirectPath = s.redirectPath;
    }
    if (s.port !== undefined) {
      const value = isObj(s.port) ? s.port.value : undefined;
      if (value === undefined || value === "") {
        if (!isObj(s.port)) fail(`${at}.service.port`, s.port, "{ name, value }");
      } else if (!/^\d{1,5}$/.test(String(value))) fail(`${at}.service.port.value`, value, "a port number");
      else rule.port = String(value);
    }
    out.push(rule);
  });
  if (problems.length) throw new ConfigError(problems, file);
  return { ingress: out };
}

/** In the shape of the importer registry (src/config/compat/index.ts). */
export const mesherYaml = {
  name: "Mesher mesher.yaml (ingress rules)",
  detect: (doc: unknown) => isObj(doc) && isObj(doc.mesher),
  translate: importMesherYaml,
};
