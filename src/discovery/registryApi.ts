/**
 * go-micro's sidecar registry API on the admin port (micro v0.4.0 `car`, PEERS.md 2.15), so
 * apps written for it keep working: `GET /registry?service=X` (404 when unknown), `GET
 * /registry` (all services), `POST /registry[?ttl=10s]` (register), `DELETE /registry`
 * (deregister). Bodies are go-micro's `registry.Service` JSON; keys match in any case, as Go's
 * encoding/json does ({"Name","Nodes":[{"Id","Address","Port"}]} or lowercase). Writes go
 * through to the configured registry. Without `?ttl` the registration lives as long as this
 * sidecar (it keeps it alive); with one, the caller must re-register before it runs out.
 */
import { Hono, type Context } from "hono";
import { parseDuration } from "../config/duration.ts";
import type { Instance, Registry } from "./types.ts";
import { ERROR_HEADER } from "../pipeline/errors.ts";

/** go-micro's registry.Node / registry.Service as JSON. */
interface MicroNode {
  id: string;
  address: string;
  port: number;
  metadata: Record<string, string>;
}
interface MicroService {
  name: string;
  version: string;
  metadata: Record<string, string>;
  nodes: MicroNode[];
}

/** Case-insensitive field read, as Go's json.Unmarshal matches struct fields. */
function field(o: unknown, name: string): unknown {
  if (!o || typeof o !== "object") return undefined;
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(o)) if (k.toLowerCase() === want) return v;
  return undefined;
}

function strings(o: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (o && typeof o === "object") for (const [k, v] of Object.entries(o)) if (v !== null && v !== undefined) out[k] = String(v);
  return out;
}

function hostPort(address: string, port: number): string {
  // go-micro nodes carry either "host" + port, or "host:port" with port 0.
  if (port > 0) return `${address.includes(":") && !address.startsWith("[") ? `[${address}]` : address}:${port}`;
  return address;
}

/** Turns a go-micro service body into instances; throws a message on a bad body. */
export function fromMicro(body: unknown, needAddress = true): Instance[] {
  const name = field(body, "name");
  if (typeof name !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
    throw new Error('the body needs "name": a service name');
  }
  const version = field(body, "version");
  const metadata = strings(field(body, "metadata"));
  const nodes = field(body, "nodes");
  if (!Array.isArray(nodes) || nodes.length === 0) throw new Error('the body needs "nodes": [{ "id", "address", "port" }]');
  return nodes.map((n, i): Instance => {
    const id = field(n, "id");
    const address = field(n, "address");
    const port = Number(field(n, "port") ?? 0);
    if (typeof id !== "string" || !id) throw new Error(`nodes[${i}] needs an "id"`);
    if (!needAddress && (typeof address !== "string" || !address)) {
      return { id, service: name, addresses: {}, tags: {}, status: "UP" };
    }
    if (typeof address !== "string" || !address) throw new Error(`nodes[${i}] needs an "address"`);
    const addr = hostPort(address, Number.isInteger(port) ? port : 0);
    if (!/^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(addr)) {
      throw new Error(`nodes[${i}]: "${addr}" is not host:port (give "port", or "address" as host:port)`);
    }
    const tags = { ...metadata, ...strings(field(n, "metadata")) };
    if (typeof version === "string" && version) tags.version = version;
    const status = tags.status === "DOWN" ? "DOWN" : "UP";
    delete tags.status;
    return { id, service: name, addresses: { http: addr }, tags, status };
  });
}

/** Instances as go-micro services: one entry per version, as go-micro's registries return. */
export function toMicro(instances: readonly Instance[]): MicroService[] {
  const byVersion = new Map<string, MicroService>();
  for (const i of instances) {
    const version = i.tags.version ?? "";
    let svc = byVersion.get(version);
    if (!svc) byVersion.set(version, (svc = { name: i.service, version, metadata: {}, nodes: [] }));
    const address = i.addresses.http ?? Object.values(i.addresses)[0] ?? "";
    const cut = address.lastIndexOf(":");
    let host = address.slice(0, cut);
    if (host.startsWith("[")) host = host.slice(1, -1);
    svc.nodes.push({ id: i.id, address: host, port: Number(address.slice(cut + 1)), metadata: { ...i.tags, status: i.status } });
  }
  return [...byVersion.values()];
}

const problem = (c: Context, status: 400 | 404 | 502, code: string, message: string) =>
  c.json({ error: { code, message } }, status, { [ERROR_HEADER]: code });

async function readBody(c: Context, needAddress = true): Promise<Instance[]> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new Error("the body is not JSON");
  }
  return fromMicro(body, needAddress);
}

/** The /registry routes, mounted by the admin app. */
export function registryApi(registry: Registry): Hono {
  const app = new Hono();

  app.get("/", async (c) => {
    const service = c.req.query("service");
    try {
      if (!service) return c.json((await registry.services()).map((name) => ({ name })));
      const instances = await registry.list(service);
      if (instances.length === 0) return problem(c, 404, "not_found", "Service not found");
      return c.json(toMicro(instances));
    } catch (err) {
      return problem(c, 502, "registry_unavailable", (err as Error).message);
    }
  });

  app.post("/", async (c) => {
    let instances: Instance[];
    let ttl: number | undefined;
    try {
      instances = await readBody(c);
      const q = c.req.query("ttl");
      if (q !== undefined) {
        const ms = parseDuration(q);
        if (ms === undefined || ms < 1000) throw new Error(`ttl "${q}" is not a duration of at least 1s ("10s")`);
        ttl = ms / 1000;
      }
    } catch (err) {
      return problem(c, 400, "bad_request", (err as Error).message);
    }
    if (registry.readOnly) return problem(c, 400, "bad_request", `the ${registry.kind} registry is read-only`);
    try {
      for (const i of instances) await registry.register(i, ttl === undefined ? {} : { ttl, keepAlive: false });
    } catch (err) {
      return problem(c, 502, "registry_unavailable", (err as Error).message);
    }
    return c.json({});
  });

  app.delete("/", async (c) => {
    let instances: Instance[];
    try {
      instances = await readBody(c, false);
    } catch (err) {
      return problem(c, 400, "bad_request", (err as Error).message);
    }
    if (registry.readOnly) return problem(c, 400, "bad_request", `the ${registry.kind} registry is read-only`);
    try {
      for (const i of instances) await registry.deregister(i.service, i.id);
    } catch (err) {
      return problem(c, 502, "registry_unavailable", (err as Error).message);
    }
    return c.json({});
  });

  return app;
}
