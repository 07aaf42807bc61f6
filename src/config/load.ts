/**
 * Reads a config file: a TS/JS module (default export: the config, or a function returning
 * it), or the same shape as JSON or YAML.
 */
import { basename, dirname, extname, resolve } from "node:path";
import { ConfigError } from "./errors.ts";
import { expandIncludes, includedFiles } from "./include.ts";

const SRC_ROOT = resolve(import.meta.dir, "..");
const INDEX = resolve(SRC_ROOT, "index.ts");
let pluginInstalled = false;

/**
 * Lets a config file anywhere `import { defineConfig } from "mesher"`. Bun's runtime plugins
 * cannot redirect a bare specifier with onResolve (tried on Bun 1.4.5: "Cannot find package"),
 * so files outside mesher that cannot resolve "mesher" on their own get the specifier rewritten
 * to mesher's entry point as they load.
 */
function installMesherResolution(configDir: string): void {
  if (pluginInstalled) return;
  try {
    Bun.resolveSync("mesher", configDir);
    return; // resolvable as installed: nothing to do
  } catch {
    pluginInstalled = true;
  }
  const escaped = SRC_ROOT.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const filter = new RegExp(`^(?!${escaped}/)(?!.*/node_modules/).*\\.[cm]?[jt]sx?(\\?.*)?$`);
  Bun.plugin({
    name: "mesher-self-resolve",
    setup(build) {
      build.onLoad({ filter }, async (args) => {
        const path = args.path.replace(/\?.*$/, "");
        const source = await Bun.file(path).text();
        const ext = extname(path);
        const loader = ext.endsWith("x") ? (ext.includes("t") ? "tsx" : "jsx") : ext.includes("t") ? "ts" : "js";
        return {
          contents: source.replace(/((?:from|import)\s*\(?\s*)(["'])mesher\2/g, `$1${JSON.stringify(INDEX)}`),
          loader,
        };
      });
    },
  });
}

let generation = 0;

/**
 * Loads the raw (unvalidated) config object from a file, with its `include` files merged in.
 * Every file read (this one, and any it includes) is appended to `files`, the set a watcher
 * follows for live reload.
 */
export async function loadConfigFile(file: string, files?: string[]): Promise<unknown> {
  const raw = await loadOwnFile(file, files);
  files?.push(...includedFiles(raw, resolve(file)));
  return expandIncludes(raw, resolve(file));
}

async function loadOwnFile(file: string, files?: string[]): Promise<unknown> {
  const path = resolve(file);
  files?.push(path);
  if (!(await Bun.file(path).exists())) {
    throw new ConfigError([{ path: "", value: path, expected: "an existing config file" }]);
  }
  const ext = extname(path).toLowerCase();
  if (ext === ".json") return parseText(path, await Bun.file(path).text(), JSON.parse);
  // yaml (~5 MB of RSS) is imported only for YAML files.
  if (ext === ".yaml" || ext === ".yml") return parseText(path, await Bun.file(path).text(), (await import("yaml")).parse);
  installMesherResolution(dirname(path));
  // A query string makes Bun import the file afresh, so a reload sees edits.
  let mod: Record<string, unknown>;
  try {
    mod = await import(`${path}?v=${++generation}`);
  } catch (err) {
    throw syntaxProblems(err, path) ?? err;
  }
  let value: unknown = mod.default ?? mod.config;
  if (typeof value === "function") value = await (value as () => unknown)();
  if (value === undefined) {
    throw new ConfigError([{ path: "", value: Object.keys(mod), expected: `a default export in ${path}` }]);
  }
  return value;
}

/** What Bun's transpiler reports per error when importing a module that does not parse. */
interface BuildMessageLike {
  message: string;
  position?: { file?: string; line: number; column: number; lineText?: string } | null;
}

/**
 * A module that does not parse makes Bun throw an AggregateError whose message is only
 * "N errors building <file>"; its BuildMessages carry the line, column and what was wrong.
 */
function syntaxProblems(err: unknown, path: string): ConfigError | undefined {
  const errors = (err as { errors?: unknown }).errors;
  if (!Array.isArray(errors)) return undefined;
  const problems = (errors as BuildMessageLike[])
    .filter((e) => e?.position && typeof e.message === "string")
    .map((e) => ({
      path: `${basename((e.position!.file ?? path).replace(/\?.*$/, ""))}:${e.position!.line}:${e.position!.column}`,
      value: e.position!.lineText?.trim(),
      expected: `valid syntax (${e.message})`,
    }));
  return problems.length ? new ConfigError(problems, basename(path)) : undefined;
}

function parseText(path: string, text: string, parse: (t: string) => unknown): unknown {
  try {
    return parse(text);
  } catch (err) {
    throw new ConfigError([{ path: "", value: path, expected: `valid syntax (${(err as Error).message})` }]);
  }
}
