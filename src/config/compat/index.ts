/**
 * Importers: translate peers' YAML (Mesher's router.yaml, Istio VirtualService and
 * DestinationRule) into fragments of mesher's own config. `include` in a config lists the
 * files; each YAML document in them (`---` separated) goes to the first importer whose
 * `detect` accepts it. To support another format, add an importer to the list.
 *
 * A fragment is a partial user config, merged into the raw config before validation (so the
 * schema checks what importers produce, like anything a user writes). The merge rule:
 * - `services.X` is created when absent; its `routes` and `endpoints` lists are appended to
 *   (the config's own first, then the included files in order), and so are the top-level
 *   `ingress` and `egress` lists; other objects (`listen`) are merged key by key;
 * - any other key is set when absent; set twice to different values it is an error naming
 *   both places;
 * - `services.X.subsets` (name -> tags, from DestinationRules) is merged by name, and route
 *   entries or mirrors that name a `subset` get its tags once every file is merged; then
 *   `subsets` is removed (it is not part of mesher's schema).
 */
import { ConfigError } from "../errors.ts";
import { istioDestinationRule, istioVirtualService } from "./istio.ts";
import { envoyBootstrap } from "./envoy.ts";
import { mesherRouter } from "./mesher.ts";
import { mesherYaml } from "./mesher-yaml.ts";
import { mesherEgress } from "./egress.ts";
import { isObj, type Obj } from "./util.ts";

/** A route entry or mirror that names a DestinationRule subset, resolved after merging. */
export interface SubsetRef {
  subset: string;
  /** "file: field" for the error when the subset is not defined anywhere. */
  subsetFrom: string;
  service?: string;
  tags?: Record<string, string>;
}

export interface FragmentService {
  routes?: unknown[];
  endpoints?: unknown[];
  subsets?: Record<string, Record<string, string>>;
  [key: string]: unknown;
}

/** A partial user config produced by an importer. */
export interface ConfigFragment {
  services?: Record<string, FragmentService>;
  [key: string]: unknown;
}

export interface Importer {
  name: string;
  detect(doc: unknown): boolean;
  translate(doc: unknown, file: string): ConfigFragment;
}

/** Tried in order; the first that detects a document translates it. */
export const importers: Importer[] = [mesherRouter, istioVirtualService, istioDestinationRule, mesherYaml, envoyBootstrap, mesherEgress];

/** Top-level lists that included files append to (the config's own entries first). */
const APPENDED = new Set(["ingress", "egress"]);

/** Translates one YAML document; an unknown kind is an error naming the file. */
export function translateDocument(doc: unknown, file: string, index: number): ConfigFragment {
  if (doc === null || doc === undefined) return {};
  for (const imp of importers) if (imp.detect(doc)) return imp.translate(doc, file);
  const kind = isObj(doc) ? (doc.kind ? `kind ${String(doc.kind)}` : `keys ${Object.keys(doc).join(", ")}`) : typeof doc;
  throw new ConfigError(
    [{ path: `document ${index + 1}`, value: kind, expected: `a document one of the importers reads (${importers.map((i) => i.name).join(", ")})` }],
    file,
  );
}

const equal = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Merges a fragment into a raw config (mutating `raw`, whose nested objects must be copies). */
export function mergeFragment(raw: Obj, fragment: ConfigFragment, file: string, owners: Map<string, string>): void {
  for (const [key, value] of Object.entries(fragment)) {
    if (APPENDED.has(key)) {
      const have = raw[key];
      if (isObj(have) && Array.isArray(value)) {
        // egress written as { allowAll, rules }: included rules go to its rules.
        raw[key] = { ...have, rules: [...((have.rules as unknown[] | undefined) ?? []), ...value] };
      } else {
        raw[key] = [...((have as unknown[] | undefined) ?? []), ...(value as unknown[])];
      }
      continue;
    }
    if (key !== "services" && isObj(value) && (raw[key] === undefined || isObj(raw[key]))) {
      // An object such as `listen` is merged key by key: an Envoy bootstrap adds listen.edge
      // to a config that sets its own listen.admin.
      const target = (raw[key] = { ...((raw[key] as Obj | undefined) ?? {}) });
      for (const [k, x] of Object.entries(value)) setOnce(target, k, x, `${key}.${k}`, file, owners);
      continue;
    }
    if (key !== "services") {
      setOnce(raw, key, value, key, file, owners);
      continue;
    }
    const services = (raw.services ??= {}) as Obj;
    for (const [name, svc] of Object.entries(value as Record<string, FragmentService>)) {
      const target = (services[name] = { ...((services[name] as Obj | undefined) ?? {}) });
      for (const [k, x] of Object.entries(svc)) {
        const path = `services.${name}.${k}`;
        if (k === "routes" || k === "endpoints") {
          target[k] = [...((target[k] as unknown[] | undefined) ?? []), ...(x as unknown[])];
        } else if (k === "subsets") {
          const subsets = (target.subsets = { ...((target.subsets as Obj | undefined) ?? {}) });
          for (const [sub, tags] of Object.entries(x as Obj)) setOnce(subsets, sub, tags, `${path}.${sub}`, file, owners);
        } else {
          setOnce(target, k, x, path, file, owners);
        }
      }
    }
  }
}

function setOnce(target: Obj, key: string, value: unknown, path: string, file: string, owners: Map<string, string>): void {
  if (!(key in target)) {
    target[key] = value;
    owners.set(path, file);
  } else if (!equal(target[key], value)) {
    const other = owners.get(path) ?? "the config";
    throw new ConfigError([{ path, value, expected: `one value (${other} sets ${JSON.stringify(target[key])})` }], file);
  }
}

/** Replaces `subset` references by the subset's tags and drops `subsets`; errors name the reference. */
export function resolveSubsets(raw: Obj): void {
  const services = raw.services;
  if (!isObj(services)) return;
  const problems: Array<{ path: string; value: unknown; expected: string }> = [];
  const resolve = (ref: Obj, owner: string) => {
    if (!("subset" in ref)) return;
    const r = ref as unknown as SubsetRef;
    const service = r.service ?? owner;
    const subsets = (services[service] as FragmentService | undefined)?.subsets;
    const tags = subsets?.[r.subset];
    if (!tags) {
      problems.push({ path: r.subsetFrom, value: r.subset, expected: `a subset defined by a DestinationRule for host ${service}` });
    } else {
      ref.tags = { ...tags, ...r.tags };
    }
    delete ref.subset;
    delete ref.subsetFrom;
  };
  for (const [name, svc] of Object.entries(services)) {
    if (!isObj(svc) || !Array.isArray(svc.routes)) continue;
    for (const rule of svc.routes) {
      if (!isObj(rule)) continue;
      const owner = typeof rule.service === "string" ? rule.service : name;
      if (Array.isArray(rule.route)) for (const r of rule.route) if (isObj(r)) resolve(r, owner);
      const mirrors = Array.isArray(rule.mirror) ? rule.mirror : [rule.mirror];
      for (const m of mirrors) if (isObj(m)) resolve(m, owner);
    }
  }
  for (const svc of Object.values(services)) if (isObj(svc)) delete svc.subsets;
  if (problems.length) throw new ConfigError(problems);
}
