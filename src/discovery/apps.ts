/**
 * Per-host mode: one sidecar fronts several local apps (`apps`). They all register at the
 * sidecar's one provider address; the provider tells them apart by the service name the
 * caller used, which the consumer side carries as X-Forwarded-Host.
 */
import type { ResolvedConfig } from "../config/schema.ts";
import { splitHost } from "../upstream/http.ts";

/** Ports of the local app a request is for: the `apps` entry named by the host, else `service`. */
export function appPorts(config: ResolvedConfig, forwardedHost: string | null): Readonly<Record<string, number>> {
  if (forwardedHost && config.apps.length > 0) {
    const name = splitHost(forwardedHost)[0].toLowerCase();
    for (const a of config.apps) if (a.name.toLowerCase() === name) return a.ports;
  }
  return config.service.ports;
}
