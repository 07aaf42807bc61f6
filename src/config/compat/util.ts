/** Helpers the importers share: typed reading of untyped YAML with errors naming file and field. */
import { ConfigError } from "../errors.ts";

export type Obj = Record<string, unknown>;

export function isObj(x: unknown): x is Obj {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

/** Stops a translation: `file` and `path` name the field that cannot be used. */
export function fail(file: string, path: string, value: unknown, expected: string): never {
  throw new ConfigError([{ path, value, expected }], file);
}

/** Reads YAML input under a path, checking its shape and the keys it may have. */
export class Reader {
  constructor(readonly file: string) {}

  obj(x: unknown, path: string, known?: readonly string[], unsupported: Record<string, string> = {}): Obj {
    if (!isObj(x)) fail(this.file, path, x, "a map");
    for (const k of Object.keys(x)) {
      const at = path ? `${path}.${k}` : k;
      if (k in unsupported) fail(this.file, at, x[k], `nothing here: ${unsupported[k]}`);
      if (known && !known.includes(k)) fail(this.file, at, x[k], `a known field (${known.join(", ")})`);
    }
    return x;
  }

  list(x: unknown, path: string): unknown[] {
    if (!Array.isArray(x)) fail(this.file, path, x, "a list");
    return x;
  }

  str(x: unknown, path: string): string {
    if (typeof x !== "string" || x === "") fail(this.file, path, x, "a string");
    return x;
  }

  num(x: unknown, path: string): number {
    if (typeof x !== "number" || !Number.isFinite(x)) fail(this.file, path, x, "a number");
    return x;
  }

  /** Labels/tags: YAML may give `debug: true` or `version: 1.0`; tags are text. */
  tags(x: unknown, path: string): Record<string, string> {
    const o = this.obj(x, path);
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(o)) {
      if (typeof val !== "string" && typeof val !== "number" && typeof val !== "boolean") fail(this.file, `${path}.${k}`, val, "a string");
      out[k] = String(val);
    }
    return out;
  }

  /** A Go/protobuf duration ("10s", "0.5s", "1m30s", "250ms") in milliseconds. */
  duration(x: unknown, path: string): number {
    if (typeof x === "string") {
      const ms = parseGoDuration(x);
      if (ms !== undefined) return ms;
    }
    return fail(this.file, path, x, 'a duration like "10s", "0.5s" or "1m30s"');
  }
}

const GO_UNITS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };

export function parseGoDuration(text: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/y;
  let total = 0;
  let at = 0;
  const t = text.trim();
  if (!t) return undefined;
  while (at < t.length) {
    re.lastIndex = at;
    const m = re.exec(t);
    if (!m) return undefined;
    total += Number(m[1]) * GO_UNITS[m[2]!]!;
    at = re.lastIndex;
  }
  return Math.round(total);
}
