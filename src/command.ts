/** Command line: argument parsing and start-up, nothing else. Run by src/cli.ts. */
import { parseArgs } from "node:util";
import pkg from "../package.json" with { type: "json" };
import { ConfigError, loadConfig } from "./config/index.ts";
import { watchConfigFiles, type ConfigWatcher } from "./config/watch.ts";
import { maskConfig } from "./listeners/admin.ts";
import { startMesher } from "./server.ts";

const HELP = `mesher ${pkg.version}: a service-mesh sidecar and API gateway, configured in TypeScript

Usage:
  mesher [run] [options]     start the sidecar (or gateway)
  mesher check [options]     validate the config, print it resolved, and exit

Options:
  -c, --config FILE          config file: .ts/.js module, .json or .yaml (default ./mesher.config.ts)
  -m, --mode MODE            sidecar | edge (overrides the config's mode)
      --service-ports LIST   ports of the local app, e.g. http:8080,grpc:9000
                             (env SERVICE_PORTS; overrides service.ports)
  -h, --help                 show this help
  -v, --version              print the version

Live reload: editing the config file (or a file it includes) applies the new config without
a restart; an invalid edit is refused and the old config keeps serving. MESHER_WATCH=0 turns
watching off; POST /v1/mesher/reload on the admin API reloads on demand.

Signals: SIGTERM/SIGINT stop accepting, let in-flight requests finish (drainTimeout), exit 0.
`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: "string", short: "c" },
        mode: { type: "string", short: "m" },
        "service-ports": { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
      },
    });
  } catch (err) {
    console.error(`mesher: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) return console.log(HELP), 0;
  if (values.version) return console.log(pkg.version), 0;
  const command = positionals[0] ?? "run";
  if (!["run", "check"].includes(command) || positionals.length > 1) {
    console.error(`mesher: unknown command "${positionals.join(" ")}"\n\n${HELP}`);
    return 2;
  }

  const file = values.config ?? "mesher.config.ts";
  const overrides = { mode: values.mode, servicePorts: values["service-ports"] ?? process.env.SERVICE_PORTS };
  const files: string[] = [];
  let config;
  try {
    config = await loadConfig(file, overrides, files);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`mesher: ${err.message}`);
    return 1;
  }
  if (command === "check") {
    console.log(JSON.stringify(maskConfig(config), null, 2));
    console.error(`mesher: ${file} is valid`);
    return 0;
  }

  // Live reload: edits to the config file (or a file it includes) rebuild the pipeline.
  let watcher: ConfigWatcher | undefined;
  const load = async () => {
    const read: string[] = [];
    try {
      return await loadConfig(file, overrides, read);
    } finally {
      watcher?.add(read);
    }
  };
  const mesher = startMesher(config, { load });
  if (process.env.MESHER_WATCH !== "0") watcher = watchConfigFiles(files, () => void mesher.reloadFromSource());
  const a = mesher.addresses;
  console.log(
    `mesher ${config.service.name} (${config.mode}) listening consumer=${a.consumer || "off"}` +
      (a.provider ? ` provider=${a.provider}` : "") +
      (a.admin ? ` admin=${a.admin}` : "") +
      (a.edge ? ` edge=${a.edge}` : "") +
      (a.grpc ? ` grpc=${a.grpc}` : "") +
      (a.grpcProvider ? ` grpcProvider=${a.grpcProvider}` : ""),
  );
  const shutdown = async (signal: string) => {
    const stopped = mesher.stop(); // listeners stop accepting synchronously
    console.log(`mesher: ${signal}, draining`);
    watcher?.close();
    await stopped;
    console.log("mesher: stopped");
    process.exit(0);
  };
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  process.once("SIGINT", () => void shutdown("SIGINT"));
  return -1; // keep running
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err) => {
    console.error("mesher: failed to start:", err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
