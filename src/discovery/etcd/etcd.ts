/**
 * The `etcd` backend (npm `etcd3`): an instance is the JSON value of
 * `<prefix>/<service>/<id>`, attached to a lease this sidecar keeps alive, so a sidecar that
 * dies takes its instances with it within the TTL. Watches push every change; after etcd
 * restarts the client reconnects, the watch re-lists, and lost leases are re-granted with
 * their registrations put back.
 */
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen } from "cockatiel";
import { Etcd3, isRecoverableError, type IKeyValue, type Lease } from "etcd3";
import type { Instance, InstanceStatus, RegisterOptions, Registry, WatchListener } from "../types.ts";

export interface EtcdRegistryOptions {
  endpoints: string[];
  prefix: string;
  /** ms */
  ttl: number;
  username?: string;
  password?: string;
}

function decode(kv: IKeyValue): Instance | undefined {
  try {
    const i = JSON.parse(kv.value.toString()) as Instance;
    return i && typeof i.id === "string" && i.addresses ? i : undefined;
  } catch {
    return undefined; // someone else's key under our prefix
  }
}

export class EtcdRegistry implements Registry {
  readonly kind = "etcd";
  readonly #client: Etcd3;
  readonly #prefix: string;
  readonly #ttlSeconds: number;
  /** The lease of this sidecar's kept-alive registrations (granted on first use). */
  #lease?: Promise<Lease>;
  /** key -> instance this sidecar keeps registered. */
  readonly #owned = new Map<string, Instance>();
  readonly #stops = new Set<() => void>();
  #regrantTimer?: Timer;
  #closed = false;

  constructor(o: EtcdRegistryOptions) {
    this.#prefix = o.prefix.replace(/\/+$/, "");
    this.#ttlSeconds = Math.max(1, Math.round(o.ttl / 1000));
    this.#client = new Etcd3({
      hosts: o.endpoints,
      auth: o.username ? { username: o.username, password: o.password ?? "" } : undefined,
      dialTimeout: 2000,
      // The client's defaults wait 5 s before retrying a failed host and back watches off up to
      // 30 s; a sidecar should see etcd again within about a second of its return.
      faultHandling: {
        host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
        watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }).next(),
      },
    });
  }

  #key(service: string, id = ""): string {
    return `${this.#prefix}/${service}/${id}`;
  }

  async list(service: string): Promise<Instance[]> {
    const res = await this.#client.getAll().prefix(this.#key(service)).exec();
    return res.kvs.map(decode).filter((x): x is Instance => x !== undefined);
  }

  async services(): Promise<string[]> {
    const keys = await this.#client.getAll().prefix(`${this.#prefix}/`).keys();
    const names = new Set<string>();
    for (const k of keys) {
      const name = k.slice(this.#prefix.length + 1).split("/")[0];
      if (name) names.add(name);
    }
    return [...names].sort();
  }

  watch(service: string, listener: WatchListener): () => void {
    const prefix = this.#key(service);
    const current = new Map<string, Instance>();
    let stopped = false;
    let watcher: Awaited<ReturnType<ReturnType<Etcd3["watch"]>["create"]>> | undefined;
    const emit = () => !stopped && listener.update([...current.values()]);

    /** Full list, then a watch from the revision after it (nothing missed in between). */
    const relist = async (): Promise<string> => {
      const res = await this.#client.getAll().prefix(prefix).exec();
      current.clear();
      for (const kv of res.kvs) {
        const i = decode(kv);
        if (i) current.set(kv.key.toString(), i);
      }
      emit();
      return res.header.revision;
    };

    const start = async () => {
      let delay = 100;
      while (!stopped && !this.#closed) {
        try {
          const revision = await relist();
          const w = await this.#client.watch().prefix(prefix).startRevision(String(Number(revision) + 1)).create();
          if (stopped) return void w.cancel();
          watcher = w;
          w.on("put", (kv) => {
            const i = decode(kv);
            if (i) current.set(kv.key.toString(), i);
            else current.delete(kv.key.toString());
            emit();
          });
          w.on("delete", (kv) => {
            current.delete(kv.key.toString());
            emit();
          });
          // On any break, start over: a fresh list and a watch from its revision. (Resuming the
          // old watch would miss everything if etcd came back without its data: its revisions
          // restart below the one the watch waits for.)
          let broken = false;
          const restart = (err: Error) => {
            if (broken || stopped) return;
            broken = true;
            listener.error(err);
            if (watcher === w) watcher = undefined;
            void w.cancel().catch(() => undefined);
            setTimeout(() => void start(), 100);
          };
          w.on("disconnected", restart);
          w.on("error", restart);
          return;
        } catch (err) {
          if (stopped) return;
          listener.error(err as Error);
          await Bun.sleep(delay); // reconnect backoff, not a readiness wait
          delay = Math.min(delay * 2, 1000);
        }
      }
    };
    void start();
    const stop = () => {
      stopped = true;
      this.#stops.delete(stop);
      void watcher?.cancel().catch(() => undefined);
    };
    this.#stops.add(stop);
    return stop;
  }

  /** The shared lease, granted once (concurrent callers share the grant); when etcd forgets it, a new one carries every registration. */
  #sharedLease(): Promise<Lease> {
    if (this.#lease) return this.#lease;
    const lease = this.#client.lease(this.#ttlSeconds);
    const granted = lease.grant().then(
      () => lease,
      (err: unknown) => {
        if (this.#lease === granted) this.#lease = undefined;
        lease.release();
        throw err;
      },
    );
    lease.on("lost", () => {
      if (this.#lease !== granted) return;
      this.#lease = undefined;
      if (!this.#closed) this.#regrant(100);
    });
    this.#lease = granted;
    return granted;
  }

  #regrant(delay: number): void {
    clearTimeout(this.#regrantTimer);
    this.#regrantTimer = setTimeout(async () => {
      try {
        const lease = await this.#sharedLease();
        for (const [key, inst] of this.#owned) await lease.put(key).value(JSON.stringify(inst));
      } catch {
        if (!this.#closed) this.#regrant(Math.min(delay * 2, 2000));
      }
    }, delay);
  }

  async register(instance: Instance, options: RegisterOptions = {}): Promise<void> {
    const key = this.#key(instance.service, instance.id);
    const keepAlive = options.keepAlive ?? options.ttl === undefined;
    if (keepAlive) {
      this.#owned.set(key, { ...instance });
      const lease = await this.#sharedLease();
      await lease.put(key).value(JSON.stringify(instance));
      return;
    }
    this.#owned.delete(key);
    // A registration for its caller to renew (go-micro's ?ttl=): its own lease, not kept alive.
    const lease = this.#client.lease(Math.max(1, Math.round(options.ttl ?? this.#ttlSeconds)), { autoKeepAlive: false });
    try {
      await lease.put(key).value(JSON.stringify(instance));
    } finally {
      lease.release();
    }
  }

  async deregister(service: string, id: string): Promise<void> {
    const key = this.#key(service, id);
    this.#owned.delete(key);
    await this.#client.delete().key(key).exec();
  }

  async setStatus(service: string, id: string, status: InstanceStatus): Promise<void> {
    const key = this.#key(service, id);
    const own = this.#owned.get(key);
    if (own) {
      own.status = status;
      await (await this.#sharedLease()).put(key).value(JSON.stringify(own));
      return;
    }
    const value = await this.#client.get(key).string();
    if (value === null) throw new Error(`no instance ${id} of ${service} in etcd`);
    const inst = JSON.parse(value) as Instance;
    inst.status = status;
    await this.#client.put(key).value(JSON.stringify(inst)).ignoreLease().exec();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#regrantTimer);
    for (const stop of [...this.#stops]) stop();
    // Releasing (not revoking) stops the keepalive; deregister() removed what should go.
    const lease = this.#lease;
    this.#lease = undefined;
    await lease?.then((l) => l.release(), () => undefined);
    this.#client.close();
  }
}
