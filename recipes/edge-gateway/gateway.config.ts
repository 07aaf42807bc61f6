/**
 * mesher as an API gateway (edge mode) in front of two services. Ingress rules are walked in
 * order and the first match wins; no match is a 404 JSON error.
 */
import { defineConfig, MeshError } from "mesher";

const env = process.env;

export default defineConfig({
  mode: "edge",
  service: { name: "gateway" },
  listen: {
    edge: env.EDGE ?? "127.0.0.1:30080", // where external clients connect
    consumer: false, // a gateway fronts no local app: no HTTP_PROXY listener
    admin: env.ADMIN ?? "127.0.0.1:30182",
  },
  services: {
    shop: { endpoints: [`127.0.0.1:${env.SHOP_PORT ?? 8201}`] },
    catalog: { endpoints: [`127.0.0.1:${env.CATALOG_PORT ?? 8202}`] },
  },
  ingress: [
    // Mesher's form: a host and an apiPath regex.
    { host: "shop.example.com", apiPath: "^/", service: "shop" },
    // Prefix form with a rewrite: /catalog/items -> /items on the catalog service.
    { path: { prefix: "/catalog/" }, rewrite: { prefix: "/" }, service: "catalog" },
    { path: { prefix: "/shop/" }, service: "shop" },
  ],
  chains: {
    // The provider chain runs first on the way in: a toy API-key check.
    provider: [
      async function apiKey(ctx, next) {
        if (ctx.req.headers.get("x-api-key") === "revoked") throw new MeshError("forbidden", "revoked API key");
        await next();
      },
    ],
  },
});
