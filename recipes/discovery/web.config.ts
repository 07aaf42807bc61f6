/**
 * The caller: its app calls http://shop/... with this sidecar as HTTP_PROXY; the sidecar
 * finds shop's instances in the shared registry file and spreads calls over those UP.
 *
 *   bun run mesher -c recipes/discovery/web.config.ts
 *   curl -x http://127.0.0.1:30701 http://shop/items
 *   curl http://127.0.0.1:30702/clusters        # endpoints, their status, registry staleness
 */
import { defineConfig } from "mesher";

export default defineConfig({
  service: { name: "web", version: "1.0.0", app: "demo" },
  listen: { consumer: "127.0.0.1:30701", admin: "127.0.0.1:30702" },
  registry: { kind: "file", path: "/tmp/mesher-registry.yaml" },
  services: { shop: {} }, // watched from start-up (unnamed services are looked up on first call)
});
