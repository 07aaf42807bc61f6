/**
 * From what the user wrote to what the runtime reads: validate against the schema, check what
 * the schema cannot (handler names), apply command-line overrides, freeze.
 */
import * as v from "valibot";
import { discoveryProblems } from "../discovery/check.ts";
import { builtinHandlers } from "../handlers/index.ts";
import { ConfigError, problemsFromIssues, type ConfigProblem } from "./errors.ts";
import { ConfigSchema, type ResolvedConfig } from "./schema.ts";
import { tlsProblems } from "../tls/check.ts";
import { checkRouteRefs } from "../handlers/router/schema.ts";

/** Settings from the command line or the environment that override the file. */
export interface Overrides {
  mode?: string;
  /** "http:8080,grpc:9000" as Mesher's --service-ports / SERVICE_PORTS. */
  servicePorts?: string;
}

/** Parses "http:8080,grpc:9000" into { http: 8080, grpc: 9000 }. */
export function parseServicePorts(text: string): Record<string, number> {
  const ports: Record<string, number> = {};
  const problems: ConfigProblem[] = [];
  for (const part of text.split(",")) {
    const item = part.trim();
    if (!item) continue;
    const m = /^([A-Za-z][\w-]*):(\d{1,5})$/.exec(item);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
      problems.push({ path: "--service-ports", value: item, expected: 'entries like "http:8080"' });
      continue;
    }
    // Mesher calls HTTP "rest"; both names mean the same port.
    ports[m[1] === "rest" ? "http" : m[1]!] = Number(m[2]);
  }
  if (problems.length) throw new ConfigError(problems);
  return ports;
}

function applyOverrides(raw: unknown, o: Overrides): unknown {
  if (!o.mode && !o.servicePorts) return raw;
  const copy = { ...(raw as Record<string, unknown>) };
  if (o.mode) copy.mode = o.mode;
  if (o.servicePorts) {
    const service = { ...((copy.service as Record<string, unknown>) ?? {}) };
    service.ports = { ...((service.ports as Record<string, unknown>) ?? {}), ...parseServicePorts(o.servicePorts) };
    copy.service = service;
  }
  return copy;
}

function deepFreeze<T>(x: T): T {
  if (x && typeof x === "object" && !Object.isFrozen(x)) {
    Object.freeze(x);
    for (const value of Object.values(x)) deepFreeze(value);
  }
  return x;
}

/** Validates a raw config; throws a ConfigError listing every problem. */
export function resolveConfig(raw: unknown, overrides: Overrides = {}, source?: string): ResolvedConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError([{ path: "", value: raw, expected: "a config object" }], source);
  }
  const result = v.safeParse(ConfigSchema, applyOverrides(raw, overrides));
  if (!result.success) throw new ConfigError(problemsFromIssues(result.issues), source);
  const config = result.output;

  const problems: ConfigProblem[] = [];
  for (const side of ["consumer", "provider", "egress"] as const) {
    config.chains[side]?.forEach((entry, i) => {
      if (typeof entry === "string" && !(entry in builtinHandlers) && !(entry in config.handlers)) {
        const known = [...Object.keys(builtinHandlers), ...Object.keys(config.handlers)].join(", ");
        problems.push({ path: `chains.${side}[${i}]`, value: entry, expected: `a handler name (${known}) or a function` });
      }
    });
  }
  if (config.listen.provider && config.listen.provider === config.listen.consumer && !config.listen.provider.endsWith(":0")) {
    problems.push({ path: "listen.provider", value: config.listen.provider, expected: "an address other than listen.consumer" });
  }
  problems.push(...tlsProblems(config));
  problems.push(...discoveryProblems(config));
  problems.push(...checkRouteRefs(config.services));
  if (problems.length) throw new ConfigError(problems, source);
  return deepFreeze(config);
}
