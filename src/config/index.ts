import { loadConfigFile } from "./load.ts";
import { resolveConfig, type Overrides } from "./resolve.ts";
import type { ResolvedConfig } from "./schema.ts";

/**
 * Loads, validates and resolves a config file; throws a ConfigError naming every problem.
 * The paths of the files read are appended to `files` (for watching).
 */
export async function loadConfig(file: string, overrides: Overrides = {}, files?: string[]): Promise<ResolvedConfig> {
  return resolveConfig(await loadConfigFile(file, files), overrides, file);
}

export { resolveConfig, type Overrides } from "./resolve.ts";
export { ConfigError } from "./errors.ts";
