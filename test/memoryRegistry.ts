import type { Instance, Registry, WatchListener } from "../src/discovery/types.ts";

/**
 * A registry a user might write inline: instances in a Map, watchers called on change. It can
 * be told to fail, as an unreachable registry does.
 */
export function memoryRegistry() {
  const data = new Map<string, Instance[]>();
  const watchers = new Map<string, Set<WatchListener>>();
  let down: Error | undefined;
  const notify = (service: string) => {
    for (const l of watchers.get(service) ?? []) down ? l.error(down) : l.update(data.get(service) ?? []);
  };
  const registry: Registry & { fail(err?: Error): void; watchCount(): number } = {
    kind: "memory",
    watch(service, listener) {
      let set = watchers.get(service);
      if (!set) watchers.set(service, (set = new Set()));
      set.add(listener);
      queueMicrotask(() => (down ? listener.error(down) : listener.update(data.get(service) ?? [])));
      return () => set.delete(listener);
    },
    async list(service) {
      return data.get(service) ?? [];
    },
    async services() {
      return [...data.keys()];
    },
    async register(i) {
      data.set(i.service, [...(data.get(i.service) ?? []).filter((x) => x.id !== i.id), i]);
      notify(i.service);
    },
    async deregister(service, id) {
      data.set(service, (data.get(service) ?? []).filter((x) => x.id !== id));
      notify(service);
    },
    async setStatus(service, id, status) {
      for (const x of data.get(service) ?? []) if (x.id === id) x.status = status;
      notify(service);
    },
    async close() {},
    fail(err) {
      down = err;
      for (const s of watchers.keys()) notify(s);
    },
    watchCount: () => [...watchers.values()].reduce((n, s) => n + s.size, 0),
  };
  return registry;
}

