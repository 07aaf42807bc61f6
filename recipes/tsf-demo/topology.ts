/**
 * The TSF-style three-service demo, in one process: user -> shop -> promotion, each app behind
 * its own sidecar (consumer + provider listeners), all tracing to the same collector.
 *
 *   client -> user's sidecar (provider) -> user app -> user's sidecar (consumer)
 *          -> shop's sidecar (provider) -> shop app -> shop's sidecar (consumer)
 *          -> promotion's sidecar (provider) -> promotion app
 */
import { resolveConfig } from "../../src/config/resolve.ts";
import type { UserConfig } from "../../src/config/schema.ts";
import { startMesher, type Mesher } from "../../src/server.ts";
import { startTsfApp, TSF_HEADERS } from "./app.ts";

export interface TsfDemoOptions {
  /** OTLP/gRPC collector, e.g. "http://127.0.0.1:4317". */
  otlp?: string;
  /** SkyWalking OAP gRPC address, e.g. "127.0.0.1:11800". */
  skywalking?: string;
  /** Headers the apps copy (default: the TSF demo's nine). */
  copy?: readonly string[];
  /** Extra config for every sidecar (access log, sampler...). */
  extra?: Partial<UserConfig>;
}

/** One sidecar's config: the recipe's whole mesh config, per service. */
export function sidecarConfig(service: string, appPort: number, next: { name: string; address: string } | undefined, o: TsfDemoOptions): UserConfig {
  return {
    service: { name: service, version: "1.0.0", app: "tsf-demo", ports: { http: appPort } },
    listen: { consumer: "127.0.0.1:0", provider: "127.0.0.1:0", admin: "127.0.0.1:0" },
    services: next ? { [next.name]: { endpoints: [next.address] } } : {},
    tracing: {
      sampler: 1,
      flushInterval: "200ms",
      ...(o.otlp ? { otlp: { endpoint: o.otlp } } : {}),
      ...(o.skywalking ? { skywalking: { serverUri: o.skywalking } } : {}),
    },
    ...o.extra,
  };
}

export interface TsfDemo {
  /** Where a client calls user (its sidecar's provider listener). */
  entry: string;
  sidecars: Record<"user" | "shop" | "promotion", Mesher>;
  /** Calls user's create API through the mesh. */
  call(headers?: Record<string, string>): Promise<Response>;
  stop(): Promise<void>;
}

export function startTsfDemo(o: TsfDemoOptions = {}): TsfDemo {
  const copy = o.copy ?? TSF_HEADERS;
  const proxies: Record<string, string | undefined> = {};
  const promotionApp = startTsfApp({ service: "promotion", copy });
  const shopApp = startTsfApp({ service: "shop", next: "promotion", proxy: () => proxies.shop, copy });
  const userApp = startTsfApp({ service: "user", next: "shop", proxy: () => proxies.user, copy });
  const start = (c: UserConfig) => startMesher(resolveConfig(c));
  const promotion = start(sidecarConfig("promotion", promotionApp.port!, undefined, o));
  const shop = start(sidecarConfig("shop", shopApp.port!, { name: "promotion", address: promotion.addresses.provider! }, o));
  const user = start(sidecarConfig("user", userApp.port!, { name: "shop", address: shop.addresses.provider! }, o));
  proxies.shop = `http://${shop.addresses.consumer}`;
  proxies.user = `http://${user.addresses.consumer}`;
  const entry = user.addresses.provider!;
  return {
    entry,
    sidecars: { user, shop, promotion },
    call: (headers = {}) => fetch(`http://${entry}/api/v6/user/create`, { headers }),
    async stop() {
      await Promise.all([user.stop(), shop.stop(), promotion.stop()]);
      for (const app of [userApp, shopApp, promotionApp]) app.stop(true);
    },
  };
}
