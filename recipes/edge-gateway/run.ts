/**
 * One command for the whole recipe: starts the two apps and mesher in edge mode in front of
 * them, and stops everything on Ctrl-C. Run it from the repository root:
 *
 *   bun recipes/edge-gateway/run.ts                       # gateway.config.ts
 *   CONFIG=envoy.config.ts bun recipes/edge-gateway/run.ts  # the same gateway from envoy.yaml
 */
import { join } from "node:path";
import { startApp } from "./app.ts";

const shop = startApp("shop", Number(process.env.SHOP_PORT ?? 8201));
const catalog = startApp("catalog", Number(process.env.CATALOG_PORT ?? 8202));
const root = join(import.meta.dir, "../..");
const mesher = Bun.spawn(["bun", join(root, "src/cli.ts"), "-c", join(import.meta.dir, process.env.CONFIG ?? "gateway.config.ts")], {
  cwd: root,
  env: { ...process.env, SHOP_PORT: String(shop.port), CATALOG_PORT: String(catalog.port) },
  stdout: "inherit",
  stderr: "inherit",
});
const edge = process.env.EDGE ?? "127.0.0.1:30080";
console.log(`apps: shop on 127.0.0.1:${shop.port}, catalog on 127.0.0.1:${catalog.port}`);
console.log(`try:  curl -H 'Host: shop.example.com' http://${edge}/cart`);
console.log(`      curl http://${edge}/catalog/items/7`);
console.log(`      curl http://${edge}/nowhere        (404 no_route)`);

const stop = () => {
  mesher.kill("SIGTERM");
  shop.stop(true);
  catalog.stop(true);
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
process.exit(await mesher.exited);
