import { loadConfigFile } from "./load.ts";
import { resolveConfig, type Overrides } from "./resolve.ts";
import type { ResolvedConfig } from "./schema.ts";

/** Loads, validates and resolves a config file; throws a ConfigError naming every problem. */
export async function loadConfig(file: string, overrides: Overrides = {}): Promise<ResolvedConfig> {
  return resolveConfig(await loadConfigFile(file), overrides, file);
}

export { resolveConfig, type Overrides } from "./resolve.ts";
export { ConfigError } from "./errors.ts";
