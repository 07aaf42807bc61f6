/**
 * The one schema of mesher's config. The types users write (`UserConfig`) and the resolved
 * config the runtime reads (`ResolvedConfig`) are both inferred from it; nothing is written
 * twice. Every field carries a description: the README's config reference is generated from
 * them (`bun src/config/reference.ts`).
 */
import * as v from "valibot";
import { Duration } from "./duration.ts";
import { ServiceName } from "./names.ts";
import { ListenTlsSchema, UpstreamTlsSchema } from "../tls/schema.ts";
import { EgressSchema } from "../egress/schema.ts";
import type { Handler, HandlerFactory } from "../pipeline/types.ts";
import { discoveryEntries } from "../discovery/schema.ts";
import { RoutesField } from "../handlers/router/schema.ts";
import { GlobalResilienceEntries, ServiceResilienceEntries } from "../handlers/resilienceSchema.ts";
import { accessLogKey, tracingKey } from "../telemetry/schema.ts";
import { edgeListenEntries, ingressSchema } from "../listeners/ingressSchema.ts";

const d = v.description;

const ADDRESS_RE = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
export const Address = v.pipe(
  v.string(),
  v.check(
    (a) => ADDRESS_RE.test(a) && Number(a.slice(a.lastIndexOf(":") + 1)) <= 65535,
    'an address "host:port" (port 0..65535)',
  ),
);

export { ServiceName };

const Port = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535));
const Tags = v.record(v.string(), v.string());

export const EndpointSchema = v.union(
  [
    Address,
    v.strictObject({
      address: v.pipe(Address, d("host:port of the endpoint (a peer sidecar's provider listener, or an app)")),
      tags: v.optional(v.pipe(Tags, d("labels such as version, matched by route rules")), {}),
      weight: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), d("relative weight for weighted balancers")), 1),
    }),
  ],
  'an endpoint: "host:port" or { address, tags?, weight? }',
);

export const ServiceSchema = v.strictObject({
  endpoints: v.optional(
    v.pipe(v.array(EndpointSchema), d("static endpoints of the service; discovery adds more")),
    [],
  ),
  tls: v.optional(v.pipe(UpstreamTlsSchema, d("call this service over TLS (https://, wss://, gRPC to its grpcEndpoints)"))),
  routes: RoutesField,
  ...ServiceResilienceEntries,
  grpcEndpoints: v.optional(
    v.pipe(v.array(EndpointSchema), d("gRPC provider listeners (listen.grpcProvider) of the service's sidecars")),
    [],
  ),
});

const isFunction = (x: unknown): x is (...a: never[]) => unknown => typeof x === "function";

export const ChainEntry = v.union(
  [
    v.pipe(v.string(), v.minLength(1)),
    v.custom<Handler>(isFunction, "an async function (ctx, next)"),
  ],
  "a handler name or an inline handler function (ctx, next)",
);

const ListenSchema = v.strictObject({
  consumer: v.optional(
    v.pipe(
      v.union([Address, v.literal(false)], 'an address "host:port", or false to disable'),
      d("where the local app sends its calls (its HTTP_PROXY); false: none (an edge gateway may not need one)"),
    ),
    "127.0.0.1:30101",
  ),
  provider: v.optional(
    v.pipe(Address, d("where other sidecars reach this one; omitted: consumer-only sidecar")),
  ),
  admin: v.optional(
    v.pipe(
      v.union([Address, v.literal(false)], 'an address "host:port", or false to disable'),
      d("admin API (health, metrics, clusters); keep it on loopback"),
    ),
    "127.0.0.1:30102",
  ),
  idleTimeout: v.optional(
    v.pipe(Duration, d("closes idle client connections after this; streaming responses are exempt")),
    "60s",
  ),
  connect: v.optional(
    v.pipe(
      v.union([v.boolean(), v.literal("auto")], 'true, false or "auto"'),
      d('serve CONNECT (the app\'s HTTPS_PROXY) on the consumer port (node:http engine); false: the faster Bun.serve, CONNECT answered 405; "auto": CONNECT served only when an egress rule (or allowAll) can allow one, else Bun.serve refuses it (403)'),
    ),
    "auto",
  ),
  fastPath: v.optional(
    v.pipe(
      v.union([v.boolean(), v.literal("auto")], 'true, false or "auto"'),
      d('relay requests whose chain has nothing to do (consumer: no routes or policies for the service; provider: no rate limit; no access log; a trace not sampled; no body or a Content-Length one) over raw sockets, without Request/Response objects; everything else goes to the regular engine behind it, one loopback hop further. "auto": on unless the config sends little its way (the access log on, a custom chain, a default policy every service inherits); false: the regular engine only. Not on a listener with TLS; a change needs a restart'),
    ),
    "auto",
  ),
  tls: v.optional(v.pipe(ListenTlsSchema, d("serve TLS on these listeners"))),
  ...edgeListenEntries(Address),
});

export const ConfigSchema = v.strictObject({
  mode: v.optional(
    v.pipe(v.picklist(["sidecar", "edge"]), d("sidecar (next to an app) or edge (API gateway)")),
    "sidecar",
  ),
  service: v.pipe(
    v.strictObject({
      name: v.pipe(ServiceName, d("name of the local app this sidecar fronts")),
      version: v.optional(v.pipe(v.string(), d("version of the local app")), "0.0.1"),
      app: v.optional(v.pipe(v.string(), d("application (group) the service belongs to")), "default"),
      tags: v.optional(v.pipe(Tags, d("extra labels of the local app (zone, ...)")), {}),
      ports: v.optional(
        v.pipe(v.record(v.string(), Port), d('ports of the local app by protocol, e.g. { http: 8080 }')),
        {},
      ),
    }),
    d("the local app"),
  ),
  listen: v.optional(v.pipe(ListenSchema, d("listener addresses")), {}),
  include: v.optional(v.pipe(v.array(v.string()), d("YAML files merged into this config (Mesher router.yaml, Istio VirtualService/DestinationRule), relative to it")), []),
  ingress: ingressSchema(ServiceName),
  services: v.optional(
    v.pipe(v.record(ServiceName, ServiceSchema), d("services this sidecar can call, by name")),
    {},
  ),
  egress: v.optional(v.pipe(EgressSchema, d("external hosts the app may reach through this sidecar (plain HTTP and CONNECT)")), []),
  chains: v.optional(
    v.pipe(
      v.strictObject({
        consumer: v.optional(v.pipe(v.array(ChainEntry), d("handlers for app -> mesh calls"))),
        provider: v.optional(v.pipe(v.array(ChainEntry), d("handlers for mesh -> app calls"))),
        egress: v.optional(v.pipe(v.array(ChainEntry), d("handlers for app -> external host calls (egress)"))),
      }),
      d("handler chains; defaults follow Mesher's"),
    ),
    {},
  ),
  handlers: v.optional(
    v.pipe(
      v.record(v.string(), v.custom<HandlerFactory>(isFunction, "a handler factory (env) => handler")),
      d("named handler factories of your own, usable by name in chains"),
    ),
    {},
  ),
  ...discoveryEntries,
  drainTimeout: v.optional(
    v.pipe(Duration, d("on SIGTERM, how long in-flight requests may take to finish")),
    "30s",
  ),
  tracing: tracingKey,
  accessLog: accessLogKey,
  maxRequestBodySize: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(0), d("largest request body accepted, in bytes")),
    8 * 1024 ** 3,
  ),
  ...GlobalResilienceEntries,
});

/** What a user writes. */
export type UserConfig = v.InferInput<typeof ConfigSchema>;
/** What the runtime reads: defaults filled in, durations in ms, frozen. */
export type ResolvedConfig = Readonly<v.InferOutput<typeof ConfigSchema>>;
export type ServiceConfig = v.InferOutput<typeof ServiceSchema>;
