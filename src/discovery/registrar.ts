/**
 * Self-registration: each local app behind this sidecar (service, plus `apps` in per-host
 * mode) is registered as an instance at the sidecar's provider address (callers reach the app
 * through its sidecar), once its health checks pass; failing checks flip it DOWN, passing
 * ones UP again; a graceful stop deregisters it. An app without checks registers at once.
 */
import { networkInterfaces } from "node:os";
import type { ResolvedConfig } from "../config/schema.ts";
import { compileCheck, watchHealth, type CheckResult, type CompiledCheck } from "./healthCheck.ts";
import type { Instance, InstanceStatus, Registry } from "./types.ts";

export interface LocalApp {
  name: string;
  version: string;
  app: string;
  tags: Record<string, string>;
  checks: CompiledCheck[];
}

/** The apps a sidecar fronts: `service` (checked by `healthCheck`) and each of `apps`. */
export function localApps(config: ResolvedConfig): LocalApp[] {
  const s = config.service;
  return [
    { name: s.name, version: s.version, app: s.app, tags: s.tags, checks: config.healthCheck.map((h) => compileCheck(h, s.ports.http ?? Object.values(s.ports)[0])) },
    ...config.apps.map((a) => ({
      name: a.name,
      version: a.version,
      app: a.app,
      tags: a.tags,
      checks: a.healthCheck.map((h) => compileCheck(h, a.ports.http ?? Object.values(a.ports)[0])),
    })),
  ];
}

/**
 * The address other machines can reach a listener at: a wildcard bind ("0.0.0.0", "[::]")
 * is replaced by this machine's first non-internal IPv4 address.
 */
export function advertisedAddress(bound: string): string {
  const i = bound.lastIndexOf(":");
  const host = bound.slice(0, i);
  if (host !== "0.0.0.0" && host !== "[::]" && host !== "::") return bound;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return `${a.address}${bound.slice(i)}`;
  }
  return `127.0.0.1${bound.slice(i)}`;
}

export interface RegistrationState {
  service: string;
  id: string;
  registered: boolean;
  status: InstanceStatus;
  /** Why the last check failed, or the last registry error. */
  reason?: string;
}

interface Entry {
  app: LocalApp;
  instance: Instance;
  state: RegistrationState;
  stop?: () => void;
  /** The registry call under way, awaited before deregistering. */
  pending?: Promise<void>;
}

/** How often an app without checks retries a registration the registry refused. */
const RETRY_MS = 2000;

export class Registrar {
  readonly #registry: Registry;
  readonly #entries: Entry[];
  #stopping = false;

  /** `grpcAddress`: the grpcProvider listener, registered as the first (main) app's `grpc` address. */
  constructor(registry: Registry, apps: LocalApp[], address: string, suffix: string, grpcAddress?: string) {
    this.#registry = registry;
    this.#entries = apps.map((app, i): Entry => {
      const instance: Instance = {
        id: `${app.name}-${suffix}`,
        service: app.name,
        // The gRPC provider listener hands calls to service.ports.grpc only: the main app's.
        addresses: grpcAddress && i === 0 ? { http: address, grpc: grpcAddress } : { http: address },
        tags: { ...app.tags, version: app.version, app: app.app },
        status: "UP",
      };
      return { app, instance, state: { service: app.name, id: instance.id, registered: false, status: "DOWN" } };
    });
  }

  start(): void {
    for (const e of this.#entries) {
      if (e.app.checks.length > 0) {
        e.stop = watchHealth(e.app.checks, (r) => this.#apply(e, r));
        continue;
      }
      let timer: Timer | undefined;
      const attempt = async () => {
        await this.#apply(e, { ok: true });
        if (!e.state.registered && !this.#stopping) timer = setTimeout(attempt, RETRY_MS);
      };
      void attempt();
      e.stop = () => clearTimeout(timer);
    }
  }

  /** Acts on one health result; the local state changes only once the registry took it. */
  #apply(e: Entry, r: CheckResult): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    e.pending = this.#applyNow(e, r).finally(() => (e.pending = undefined));
    return e.pending;
  }

  async #applyNow(e: Entry, r: CheckResult): Promise<void> {
    const s = e.state;
    try {
      if (r.ok && !s.registered) {
        e.instance.status = "UP";
        await this.#registry.register({ ...e.instance });
        s.registered = true;
        s.status = "UP";
        s.reason = undefined;
      } else if (s.registered && (r.ok ? "UP" : "DOWN") !== s.status) {
        const status: InstanceStatus = r.ok ? "UP" : "DOWN";
        await this.#registry.setStatus(e.instance.service, e.instance.id, status);
        e.instance.status = s.status = status;
        s.reason = r.reason;
      } else {
        s.reason = r.reason;
      }
    } catch (err) {
      s.reason = `registry: ${(err as Error).message}`;
    }
  }

  states(): RegistrationState[] {
    return this.#entries.map((e) => ({ ...e.state }));
  }

  /** Stops checking and deregisters what was registered (bounded by `timeout` ms in all). */
  async stop(timeout = 2000): Promise<void> {
    this.#stopping = true;
    for (const e of this.#entries) e.stop?.();
    const work = (async () => {
      await Promise.all(this.#entries.map((e) => e.pending));
      await Promise.all(
        this.#entries
          .filter((e) => e.state.registered)
          .map((e) =>
            this.#registry.deregister(e.instance.service, e.instance.id).then(
              () => void (e.state.registered = false),
              (err: Error) => console.error(`mesher: could not deregister ${e.instance.id}: ${err.message}`),
            ),
          ),
      );
    })();
    let timer: Timer | undefined;
    await Promise.race([work, new Promise((r) => (timer = setTimeout(r, timeout)))]);
    clearTimeout(timer);
  }
}
