/**
 * The sidecar of a "promotion" app. Config is code: one file serves both copies, v1 and v2,
 * picked by the VERSION environment variable.
 */
import { defineConfig } from "mesher";

const version = process.env.VERSION === "v2" ? "v2" : "v1";
const n = version === "v2" ? 2 : 1;

export default defineConfig({
  service: { name: "promotion", version, app: "demo", tags: { version }, ports: { http: 8090 + n } },
  listen: {
    consumer: `127.0.0.1:30${n + 1}01`, // promotion's own outgoing calls (unused here)
    provider: `127.0.0.1:301${n}2`, // 30112 for v1, 30122 for v2: what shop's sidecar calls
    admin: `127.0.0.1:30${n + 1}02`,
  },
});
