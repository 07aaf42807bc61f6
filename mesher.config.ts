/**
 * The example config: this sidecar fronts an app called "shop" and can call "promotion".
 * Copy it, edit it; `bun run mesher check` validates it.
 */
import { defineConfig } from "mesher";

export default defineConfig({
  service: { name: "shop", version: "1.0.0", app: "demo", tags: { zone: "a" }, ports: { http: 8090 } },
  listen: {
    consumer: "127.0.0.1:30101", // the app's HTTP_PROXY
    provider: "127.0.0.1:30111", // where other sidecars reach this one
    admin: "127.0.0.1:30102",
  },
  services: {
    promotion: {
      endpoints: ["127.0.0.1:30112", { address: "127.0.0.1:30122", tags: { version: "v2" } }],
    },
  },
  chains: {
    consumer: [
      "router",
      "loadBalance",
      // An inline handler: stamps every outgoing call.
      async function stamp(ctx, next) {
        ctx.headers.set("x-called-by", "shop");
        await next();
      },
      "transport",
    ],
    provider: ["transport"],
  },
});
