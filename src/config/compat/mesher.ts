/**
 * ServiceComb Mesher / go-chassis `router.yaml`: the legacy `routeRule:` map (service ->
 * rules) and the newer `servicecomb.routeRule.<service>` keys holding a YAML string each.
 * Semantics kept from go-chassis: precedence, source, sourceTags, headers (httpHeaders is the
 * same), integer comparisons, caseInsensitive, tags + percent weights with the rest going to
 * version "latest". Two deliberate differences, both documented: Mesher's regex is unanchored,
 * so it is translated to `.*(?:re).*` (same meaning in mesher's anchored regex); header names
 * are matched case-insensitively here (Mesher looked them up by Go's canonical key).
 */
import { parse as parseYaml } from "yaml";
import type { ConfigFragment, FragmentService, Importer } from "./index.ts";
import { fail, isObj, Reader, type Obj } from "./util.ts";

const OPERATORS = ["exact", "regex", "contains", "noEqu", "less", "noLess", "greater", "noGreater", "prefix", "suffix", "present", "caseInsensitive"];
const MATCH_UNSUPPORTED = {
  refer: "match policies (servicecomb.match.*) are not supported; write the match inline",
};

function translateHeaders(r: Reader, x: unknown, path: string): Record<string, Obj> {
  const out: Record<string, Obj> = {};
  for (const [name, ops] of Object.entries(r.obj(x, path))) {
    const o = { ...r.obj(ops, `${path}.${name}`, OPERATORS) };
    // go-chassis' regex is unanchored (regexp.MatchString); mesher anchors, so widen it.
    if (typeof o.regex === "string") o.regex = `.*(?:${o.regex}).*`;
    out[name] = o;
  }
  return out;
}

/** One go-chassis RouteRule into a mesher route rule. */
function translateRule(r: Reader, x: unknown, path: string): Obj {
  const rule = r.obj(x, path, ["precedence", "match", "route"]);
  const out: Obj = {};
  if (rule.precedence !== undefined) out.precedence = r.num(rule.precedence, `${path}.precedence`);
  if (rule.match !== undefined && rule.match !== null) {
    const mp = `${path}.match`;
    const m = r.obj(rule.match, mp, ["source", "sourceTags", "headers", "httpHeaders"], MATCH_UNSUPPORTED);
    const match: Obj = {};
    if (m.source !== undefined) match.source = r.str(m.source, `${mp}.source`);
    if (m.sourceTags !== undefined) match.sourceTags = r.tags(m.sourceTags, `${mp}.sourceTags`);
    const headers = {
      ...(m.headers ? translateHeaders(r, m.headers, `${mp}.headers`) : {}),
      ...(m.httpHeaders ? translateHeaders(r, m.httpHeaders, `${mp}.httpHeaders`) : {}),
    };
    if (Object.keys(headers).length) match.headers = headers;
    out.match = match;
  }
  if (rule.route !== undefined) {
    out.route = r.list(rule.route, `${path}.route`).map((d, j) => {
      const rp = `${path}.route[${j}]`;
      const dest = r.obj(d, rp, ["tags", "weight"]);
      const o: Obj = { tags: dest.tags === undefined ? {} : r.tags(dest.tags, `${rp}.tags`) };
      if (dest.weight !== undefined) o.weight = r.num(dest.weight, `${rp}.weight`);
      return o;
    });
    // go-chassis gives a lone destination without a weight all the traffic.
    const routes = out.route as Obj[];
    if (routes.length === 1 && routes[0]!.weight === undefined) routes[0]!.weight = 100;
  }
  return out;
}

function rulesOf(r: Reader, x: unknown, path: string): Obj[] {
  return r.list(x, path).map((rule, i) => translateRule(r, rule, `${path}[${i}]`));
}

/** `servicecomb.routeRule`, nested or as flat dotted keys, as archaius reads either. */
function servicecombRules(doc: Obj): Array<[service: string, yaml: unknown, path: string]> {
  const out: Array<[string, unknown, string]> = [];
  for (const [key, value] of Object.entries(doc)) {
    const flat = /^servicecomb\.routeRule\.(.+)$/.exec(key);
    if (flat) out.push([flat[1]!, value, key]);
  }
  const sc = doc.servicecomb;
  if (isObj(sc) && isObj(sc.routeRule)) {
    for (const [svc, value] of Object.entries(sc.routeRule)) out.push([svc, value, `servicecomb.routeRule.${svc}`]);
  }
  return out;
}

export const mesherRouter: Importer = {
  name: "mesher router.yaml (routeRule, servicecomb.routeRule.<service>)",
  detect(doc) {
    if (!isObj(doc)) return false;
    if ("routeRule" in doc) return true;
    return servicecombRules(doc).length > 0;
  },
  translate(doc, file): ConfigFragment {
    const r = new Reader(file);
    const d = doc as Obj;
    const services: Record<string, FragmentService> = {};
    const add = (svc: string, rules: Obj[]) => {
      const s = (services[svc] ??= { routes: [] });
      s.routes!.push(...rules);
    };
    for (const key of Object.keys(d)) {
      if (key === "routeRule" || key.startsWith("servicecomb.routeRule.")) continue;
      if (key === "router") {
        const router = r.obj(d.router, "router", ["infra", "address"]);
        if (router.infra !== undefined && router.infra !== "cse") {
          fail(file, "router.infra", router.infra, '"cse" (rules from Istio Pilot: include the VirtualService files instead)');
        }
        continue;
      }
      if (key === "sourceTemplate") {
        if (d.sourceTemplate && Object.keys(r.obj(d.sourceTemplate, key)).length) {
          fail(file, key, d.sourceTemplate, "nothing: source templates are not supported; write match.source/sourceTags");
        }
        continue;
      }
      if (key === "servicecomb") {
        r.obj(d.servicecomb, key, ["routeRule"], {
          darklaunch: "dark-launch policies are not supported; write routeRule",
          match: "match policies are not supported; write the match inline",
        });
        continue;
      }
      fail(file, key, d[key], "routeRule, servicecomb.routeRule.<service>, router or sourceTemplate");
    }
    if (d.routeRule !== undefined && d.routeRule !== null) {
      for (const [svc, rules] of Object.entries(r.obj(d.routeRule, "routeRule"))) add(svc, rulesOf(r, rules, `routeRule.${svc}`));
    }
    for (const [svc, value, path] of servicecombRules(d)) {
      let rules = value;
      if (typeof value === "string") {
        try {
          rules = parseYaml(value);
        } catch (err) {
          fail(file, path, value, `a YAML list of route rules (${(err as Error).message})`);
        }
      }
      add(svc, rulesOf(r, rules, path));
    }
    return { services };
  },
};
