/** mesher's public API: what a config file or an embedding program imports. */
export { defineConfig, type ConfigExport } from "./config/define.ts";
export type { ResolvedConfig, UserConfig } from "./config/schema.ts";
export { loadConfig, resolveConfig, ConfigError } from "./config/index.ts";
export { MeshError, type ErrorCode } from "./pipeline/errors.ts";
export type { Ctx, Direction, Handler, HandlerEnv, HandlerFactory, Next, RouteDecision, Source } from "./pipeline/types.ts";
export type { Endpoint, Cluster } from "./upstream/cluster.ts";
export { startMesher, type Mesher } from "./server.ts";
export type { Instance, InstanceStatus, Registry, RegisterOptions, WatchListener } from "./discovery/types.ts";
