/**
 * The gateway from an Envoy config: envoy.yaml is translated by mesher's Envoy importer into
 * edge mode's listener, ingress rules and services. Config is code, so the environment can
 * still move the ports (the recipe's test runs everything on ports the OS picks).
 */
import { join } from "node:path";
import { parse } from "yaml";
import { defineConfig } from "mesher";
import { importEnvoy } from "../../src/config/compat/envoy.ts";

const file = join(import.meta.dir, "envoy.yaml");
const envoy = importEnvoy(parse(await Bun.file(file).text()), file);
const env = process.env;
const endpoint = (port: string | undefined) => (port ? { endpoints: [`127.0.0.1:${port}`] } : {});

export default defineConfig({
  ...envoy,
  service: { name: "gateway" },
  listen: { ...envoy.listen, consumer: false, ...(env.EDGE && { edge: env.EDGE }), ...(env.ADMIN && { admin: env.ADMIN }) },
  services: {
    shop: { ...envoy.services!.shop, ...endpoint(env.SHOP_PORT) },
    catalog: { ...envoy.services!.catalog, ...endpoint(env.CATALOG_PORT) },
  },
});
