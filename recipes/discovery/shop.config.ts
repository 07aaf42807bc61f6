/**
 * One shop instance behind its sidecar, registering itself in a registry file shared by the
 * sidecars of this machine. Start two (edit the ports of the second), then web.config.ts:
 *
 *   bun run mesher -c recipes/discovery/shop.config.ts
 *
 * For a fleet, swap the registry for etcd:
 *   registry: { kind: "etcd", endpoints: ["http://10.0.0.9:2379"], ttl: "10s" },
 */
import { defineConfig } from "mesher";

export default defineConfig({
  service: { name: "shop", version: "1.0.0", app: "demo", ports: { http: 8090 } },
  listen: { consumer: "127.0.0.1:30601", provider: "127.0.0.1:30611", admin: "127.0.0.1:30602" },
  registry: { kind: "file", path: "/tmp/mesher-registry.yaml", ttl: "10s" },
  // Registered once /health answers 2xx; DOWN while it does not.
  healthCheck: [{ protocol: "http", path: "/health", interval: "5s", timeout: "1s" }],
});
