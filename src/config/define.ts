import type { UserConfig } from "./schema.ts";

/** What a config module may export: the config, or a function (sync or async) returning it. */
export type ConfigExport = UserConfig | (() => UserConfig | Promise<UserConfig>);

/** Identity function that gives a config file its types (like Vite's defineConfig). */
export function defineConfig(config: UserConfig): UserConfig;
export function defineConfig(config: () => UserConfig | Promise<UserConfig>): () => UserConfig | Promise<UserConfig>;
export function defineConfig(config: ConfigExport): ConfigExport {
  return config;
}
