/**
 * The sidecar of an app "shop" that may call one external HTTPS API and nothing else outside
 * the mesh. run.ts starts the "external" API on a free port and passes it in PARTNER_PORT.
 */
import { defineConfig } from "mesher";

export default defineConfig({
  service: { name: "shop" },
  listen: {
    consumer: process.env.CONSUMER ?? "127.0.0.1:30101", // the app's HTTP_PROXY and HTTPS_PROXY
    admin: false,
  },
  egress: [
    {
      name: "partner-api",
      hosts: ["localhost"], // an external name; here it resolves to 127.0.0.1
      ports: [{ port: Number(process.env.PARTNER_PORT ?? 8443), protocol: "HTTPS" }],
    },
  ],
});
