/**
 * Imports Mesher's egress.yaml (`egress:` + `egressRule:`) into mesher's `egress` rules, so a
 * Mesher deployment's file can be included as it is:
 *
 *   egress:
 *     infra: cse                 # cse (this file) | pilot (not supported)
 *   egressRule:
 *     google-ext:
 *       - hosts: ["www.google.com", "*.yahoo.com"]
 *         ports: [{ port: 80, protocol: HTTP }]
 *
 * Differences from Mesher, on purpose: "*.yahoo.com" matches names under yahoo.com only
 * (Mesher's unescaped regexp also matched "xyahooycom"); ports with protocol HTTPS/TLS/TCP
 * allow CONNECT tunnels (Mesher proxied HTTP only).
 */
import { ConfigError, type ConfigProblem } from "../errors.ts";
import type { Importer } from "./index.ts";

export interface ImportedEgressRule {
  name: string;
  hosts: string[];
  ports: { port: number; protocol: string }[];
}

const HOST_RE = /^(?:\*\.)?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const PROTOCOLS = ["HTTP", "HTTPS", "TLS", "TCP"];

const isObject = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === "object" && !Array.isArray(x);

/** Mesher's egress.yaml (parsed) -> `{ egress: [...] }`; throws a ConfigError naming the file and field. */
export function importEgressYaml(doc: unknown, file: string): { egress: ImportedEgressRule[] } {
  const problems: ConfigProblem[] = [];
  const out: ImportedEgressRule[] = [];
  if (doc === null || doc === undefined) return { egress: out }; // an empty file
  if (!isObject(doc)) throw new ConfigError([{ path: "", value: doc, expected: "a mapping with egress and egressRule" }], file);

  for (const key of Object.keys(doc)) {
    if (key !== "egress" && key !== "egressRule") {
      problems.push({ path: key, value: doc[key], expected: "only egress and egressRule (other keys are not supported)" });
    }
  }
  const settings = doc.egress;
  if (settings !== undefined && settings !== null) {
    if (!isObject(settings)) problems.push({ path: "egress", value: settings, expected: "a mapping { infra, address }" });
    else {
      const infra = settings.infra ?? "cse";
      if (infra !== "cse") {
        problems.push({ path: "egress.infra", value: infra, expected: '"cse" (rules from this file; Istio pilot is not supported)' });
      }
    }
  }

  const rules = doc.egressRule ?? {};
  if (!isObject(rules)) {
    problems.push({ path: "egressRule", value: rules, expected: "a mapping of rule name to a list of { hosts, ports }" });
  } else {
    for (const [name, list] of Object.entries(rules)) {
      const entries = Array.isArray(list) ? list : [list];
      entries.forEach((entry, i) => {
        const at = `egressRule.${name}${Array.isArray(list) ? `[${i}]` : ""}`;
        if (!isObject(entry)) return void problems.push({ path: at, value: entry, expected: "{ hosts, ports }" });
        const hosts = entry.hosts;
        if (!Array.isArray(hosts) || hosts.length === 0) {
          return void problems.push({ path: `${at}.hosts`, value: hosts, expected: "a list of at least one host" });
        }
        const good: string[] = [];
        hosts.forEach((h, j) => {
          if (typeof h === "string" && HOST_RE.test(h) && h.length <= 253) good.push(h.toLowerCase());
          else problems.push({ path: `${at}.hosts[${j}]`, value: h, expected: 'a DNS name, optionally "*.domain"' });
        });
        const ports: ImportedEgressRule["ports"] = [];
        const rawPorts = entry.ports ?? [];
        if (!Array.isArray(rawPorts)) problems.push({ path: `${at}.ports`, value: rawPorts, expected: "a list of { port, protocol }" });
        else
          rawPorts.forEach((p, j) => {
            const port = isObject(p) ? (p.port ?? 80) : undefined;
            const protocol = isObject(p) ? String(p.protocol ?? "HTTP").toUpperCase() : undefined;
            if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
              problems.push({ path: `${at}.ports[${j}].port`, value: isObject(p) ? p.port : p, expected: "a port in 1..65535" });
            } else if (!PROTOCOLS.includes(protocol!)) {
              problems.push({ path: `${at}.ports[${j}].protocol`, value: isObject(p) ? p.protocol : p, expected: PROTOCOLS.join(", ") });
            } else ports.push({ port, protocol: protocol! });
          });
        // Mesher's default when no port is given: 80/HTTP.
        if (ports.length === 0 && (!Array.isArray(rawPorts) || rawPorts.length === 0)) ports.push({ port: 80, protocol: "HTTP" });
        out.push({ name: entries.length > 1 ? `${name}[${i}]` : name, hosts: good, ports });
      });
    }
  }
  if (problems.length) throw new ConfigError(problems, file);
  return { egress: out };
}

/** egress.yaml as an `include` importer: a document with `egressRule`, or `egress.infra`. */
export const mesherEgress: Importer = {
  name: "Mesher egress.yaml",
  detect: (doc) => isObject(doc) && ("egressRule" in doc || (isObject(doc.egress) && ("infra" in doc.egress || "address" in doc.egress))),
  translate: importEgressYaml,
};
