/**
 * A registry whose backend module is imported when the registry is created, in the background:
 * `etcd3` (with the grpc-js and protobufjs it runs on) costs ~36 MB of RSS, which a sidecar
 * without an etcd registry should not pay. Every Registry member is asynchronous already (a
 * watch reports through its listener), so callers only wait a little longer for the first
 * answer; a backend that fails to load fails each call like a registry that cannot be reached.
 */
import type { Instance, InstanceStatus, RegisterOptions, Registry, WatchListener } from "./types.ts";

export class LazyRegistry implements Registry {
  readonly #ready: Promise<Registry>;

  constructor(
    readonly kind: string,
    load: () => Promise<Registry>,
    readonly readOnly?: boolean,
  ) {
    this.#ready = load();
    this.#ready.catch(() => undefined); // reported to each caller, not as an unhandled rejection
  }

  watch(service: string, listener: WatchListener): () => void {
    let stop: (() => void) | undefined;
    let stopped = false;
    this.#ready.then(
      (r) => {
        if (!stopped) stop = r.watch(service, listener);
      },
      (err: unknown) => {
        if (!stopped) listener.error(err instanceof Error ? err : new Error(String(err)));
      },
    );
    return () => {
      stopped = true;
      stop?.();
    };
  }

  async list(service: string): Promise<Instance[]> {
    return (await this.#ready).list(service);
  }

  async services(): Promise<string[]> {
    return (await this.#ready).services();
  }

  async register(instance: Instance, options?: RegisterOptions): Promise<void> {
    return (await this.#ready).register(instance, options);
  }

  async deregister(service: string, id: string): Promise<void> {
    return (await this.#ready).deregister(service, id);
  }

  async setStatus(service: string, id: string, status: InstanceStatus): Promise<void> {
    return (await this.#ready).setStatus(service, id, status);
  }

  async close(): Promise<void> {
    const r = await this.#ready.catch(() => undefined);
    await r?.close();
  }
}
