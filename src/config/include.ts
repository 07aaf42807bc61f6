/**
 * `include: [...]` in a config: YAML files (relative to the config file) whose documents are
 * translated by the importers in compat/ and merged into the raw config before validation.
 */
import { dirname, resolve } from "node:path";
import type { Obj } from "./compat/util.ts";
import { ConfigError } from "./errors.ts";

/** Absolute paths of the files a raw config includes (for a file watcher). */
export function includedFiles(raw: unknown, configFile: string): string[] {
  const list = (raw as { include?: unknown } | null)?.include;
  if (!Array.isArray(list)) return [];
  const base = dirname(resolve(configFile));
  return list.filter((x): x is string => typeof x === "string").map((f) => resolve(base, f));
}

/** Returns a copy of `raw` with every included file merged in; `raw` itself is not changed. */
export async function expandIncludes(raw: unknown, configFile: string): Promise<unknown> {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return raw;
  const list = (raw as Obj).include;
  if (list === undefined) return raw;
  if (!Array.isArray(list) || !list.every((x) => typeof x === "string")) {
    throw new ConfigError([{ path: "include", value: list, expected: "a list of file paths" }], configFile);
  }
  // The YAML parser and the importers load only for a config that includes files.
  const [{ parseAllDocuments }, { translateDocument, mergeFragment, resolveSubsets }] = await Promise.all([import("yaml"), import("./compat/index.ts")]);
  const out: Obj = { ...(raw as Obj) };
  if (out.services && typeof out.services === "object") out.services = { ...(out.services as Obj) };
  const owners = new Map<string, string>();
  const files = includedFiles(raw, configFile);
  for (let i = 0; i < files.length; i++) {
    const file = files[i]!;
    const shown = list[i] as string;
    const f = Bun.file(file);
    if (!(await f.exists())) {
      throw new ConfigError([{ path: `include[${i}]`, value: shown, expected: `an existing file (${file})` }], configFile);
    }
    const docs = parseAllDocuments(await f.text());
    if (!Array.isArray(docs)) continue; // an empty file
    docs.forEach((doc, n) => {
      if (doc.errors.length) {
        throw new ConfigError([{ path: `document ${n + 1}`, value: shown, expected: `valid YAML (${doc.errors[0]!.message})` }], shown);
      }
      mergeFragment(out, translateDocument(doc.toJS(), shown, n), shown, owners);
    });
  }
  resolveSubsets(out);
  return out;
}
