/**
 * Config of discovery and registration: `registry` (which backend), `healthCheck` (checks of
 * the local app that flip its registration UP/DOWN) and `apps` (more local apps behind one
 * sidecar, per-host mode). Plugged into the main schema with one spread.
 */
import * as v from "valibot";
import { ServiceName } from "../config/names.ts";
import { Duration } from "../config/duration.ts";
import { isRegistry, type Registry } from "./types.ts";

const d = v.description;
const Tags = v.record(v.string(), v.string());
const Port = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535));
const Seconds = v.pipe(Duration, v.minValue(1000, "a duration of at least 1s"));

const LookupTimeout = v.optional(
  v.pipe(Duration, d("how long a request for a service static config does not know waits for the registry's first answer")),
  "2s",
);

export const EtcdRegistrySchema = v.strictObject({
  kind: v.pipe(v.literal("etcd"), d("etcd v3: instances under a prefix, on a lease this sidecar keeps alive")),
  endpoints: v.optional(
    v.pipe(v.array(v.pipe(v.string(), v.url())), v.minLength(1), d("etcd: client URLs")),
    ["http://127.0.0.1:2379"],
  ),
  prefix: v.optional(v.pipe(v.string(), d("etcd: key prefix; instances live at <prefix>/<service>/<id>")), "/mesher/services"),
  ttl: v.optional(v.pipe(Seconds, d("etcd: lease TTL of this sidecar's registrations: a dead sidecar's instances vanish after it")), "10s"),
  username: v.optional(v.pipe(v.string(), d("etcd: user (with password)"))),
  password: v.optional(v.pipe(v.string(), d("etcd: password"))),
  lookupTimeout: LookupTimeout,
});

export const FileRegistrySchema = v.strictObject({
  kind: v.pipe(v.literal("file"), d("a file (or directory) shared by the sidecars of one machine")),
  path: v.pipe(v.string(), v.minLength(1), d("file: a .json/.yaml file, or a directory of them, shared by the sidecars of one machine")),
  ttl: v.optional(v.pipe(Seconds, d("file: how long this sidecar's registrations live unless renewed (renewed every ttl/3)")), "10s"),
  poll: v.optional(v.pipe(Duration, d("file: re-reads the file this often besides watching it (expiry, missed events)")), "1s"),
  lookupTimeout: LookupTimeout,
});

export const DnsRegistrySchema = v.strictObject({
  kind: v.pipe(v.literal("dns"), d("DNS: SRV, else A/AAAA records; read-only")),
  servers: v.optional(
    v.pipe(
      v.array(v.pipe(v.string(), v.regex(/^(?:[0-9.]+(?::\d{1,5})?|[0-9a-fA-F:]+|\[[0-9a-fA-F:]+\]:\d{1,5})$/, 'an IP address, optionally with a port: "10.96.0.10", "127.0.0.1:5353", "[::1]:53"'))),
      d('dns: DNS servers ("127.0.0.1:5353"); omitted: the system\'s'),
    ),
  ),
  suffix: v.optional(v.pipe(v.string(), d('dns: appended to a service name: ".default.svc.cluster.local"')), ""),
  port: v.optional(v.pipe(Port, d("dns: port of A/AAAA answers (SRV answers carry their own)")), 80),
  srv: v.optional(
    v.pipe(v.string(), d('dns: SRV name to try first, "{name}" replaced: "_http._tcp.{name}"; "" skips SRV')),
    "_http._tcp.{name}",
  ),
  minRefresh: v.optional(v.pipe(Duration, d("dns: shortest time between lookups, whatever the TTL")), "1s"),
  maxRefresh: v.optional(v.pipe(Duration, d("dns: longest time between lookups, and the refresh of SRV answers")), "30s"),
  timeout: v.optional(v.pipe(Duration, v.minValue(1), d("dns: time one DNS query may take (tried twice)")), "2s"),
  lookupTimeout: LookupTimeout,
});

export const RegistrySchema = v.union(
  [
    v.variant("kind", [EtcdRegistrySchema, FileRegistrySchema, DnsRegistrySchema]),
    v.pipe(
      v.custom<Registry>(isRegistry, "a registry object (watch, list, services, register, deregister, setStatus, close)"),
      v.title("Registry"),
    ),
  ],
  'a registry: { kind: "etcd" | "file" | "dns", ... } or your own registry object',
);

export const HealthCheckSchema = v.strictObject({
  port: v.optional(v.pipe(Port, d("port of the app on 127.0.0.1; omitted: service.ports.http"))),
  protocol: v.optional(v.pipe(v.picklist(["http", "tcp"]), d("http: GET path; tcp: a connection opens")), "http"),
  path: v.optional(v.pipe(v.string(), v.startsWith("/"), d("path of the HTTP check")), "/health"),
  interval: v.optional(v.pipe(Duration, v.minValue(10, "a duration of at least 10ms"), d("time between checks; the first runs at start")), "10s"),
  timeout: v.optional(v.pipe(Duration, d("a check that takes longer fails")), "2s"),
  match: v.optional(
    v.pipe(
      v.strictObject({
        status: v.optional(v.pipe(v.number(), v.integer(), d("exact status required (default: any 2xx)"))),
        body: v.optional(v.pipe(v.string(), d("regular expression the body must match"))),
      }),
      d("what a passing HTTP answer looks like; omitted: any 2xx"),
    ),
  ),
});

export const AppSchema = v.strictObject({
  name: v.pipe(ServiceName, d("service name of this local app")),
  version: v.optional(v.pipe(v.string(), d("its version")), "0.0.1"),
  app: v.optional(v.pipe(v.string(), d("its application (group)")), "default"),
  tags: v.optional(v.pipe(Tags, d("its extra labels")), {}),
  ports: v.pipe(v.record(v.string(), Port), d("its ports on 127.0.0.1 by protocol, e.g. { http: 8081 }")),
  healthCheck: v.optional(v.pipe(v.array(HealthCheckSchema), d("its checks (port defaults to its http port)")), []),
});

/** Fields of the main config schema, spread into it. */
export const discoveryEntries = {
  registry: v.optional(v.pipe(RegistrySchema, d("where services are discovered and this sidecar registers its app; static `services` always work beside it"))),
  healthCheck: v.optional(
    v.pipe(v.array(HealthCheckSchema), d("checks of the local app; failing flips its registration DOWN, passing flips it UP")),
    [],
  ),
  apps: v.optional(
    v.pipe(v.array(AppSchema), d("more local apps behind this sidecar (per-host mode); each registers and is checked")),
    [],
  ),
  register: v.optional(
    v.pipe(v.boolean(), d("register the local app(s) in the registry (needs listen.provider)")),
    true,
  ),
};

export type RegistryConfig = v.InferOutput<typeof RegistrySchema>;
export type HealthCheckConfig = v.InferOutput<typeof HealthCheckSchema>;
export type AppConfig = v.InferOutput<typeof AppSchema>;
