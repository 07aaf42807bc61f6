/**
 * The `file` backend: services and their instances in a JSON or YAML file (or a directory of
 * them) that the sidecars of one machine share. Writes are atomic (temp file + rename) and
 * serialized across processes by a lock file, so concurrent sidecars never lose each other's
 * registrations. Registrations carry an expiry that their sidecar renews every ttl/3, so a
 * killed sidecar's instances vanish within the ttl; entries written by hand never expire.
 *
 *   services:
 *     shop:
 *       - { id: shop-1, address: "127.0.0.1:30111", tags: { version: "1.0" } }
 *       - { id: shop-2, addresses: { http: "127.0.0.1:30211" }, status: DOWN }
 */
import { watch as fsWatch, type FSWatcher } from "node:fs";
import { mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import type { Instance, InstanceStatus, RegisterOptions, Registry, WatchListener } from "../types.ts";

export interface FileRegistryOptions {
  path: string;
  /** ms */
  ttl: number;
  /** ms */
  poll: number;
}

/** An instance as stored: `expires` (epoch ms) when a sidecar keeps it alive. */
interface Stored extends Instance {
  expires?: number;
}
type Store = Record<string, Stored[]>;

const DATA_EXT = new Set([".json", ".yaml", ".yml"]);
const LOCK_STALE_MS = 5000;
const LOCK_WAIT_MS = 5000;

function parseInstance(service: string, raw: unknown): Stored | undefined {
  if (!raw || typeof raw !== "object") return undefined;
  const o = raw as Record<string, unknown>;
  const addresses: Record<string, string> = {};
  if (o.addresses && typeof o.addresses === "object") {
    for (const [k, a] of Object.entries(o.addresses)) if (typeof a === "string") addresses[k] = a;
  }
  if (typeof o.address === "string") addresses.http ??= o.address;
  if (Object.keys(addresses).length === 0) return undefined;
  const tags: Record<string, string> = {};
  if (o.tags && typeof o.tags === "object") for (const [k, t] of Object.entries(o.tags)) tags[k] = String(t);
  return {
    id: typeof o.id === "string" ? o.id : Object.values(addresses)[0]!,
    service,
    addresses,
    tags,
    status: o.status === "DOWN" ? "DOWN" : "UP",
    expires: typeof o.expires === "number" ? o.expires : undefined,
  };
}

/** Parses one file's text into services; throws on bad syntax. */
export function parseStore(text: string, file: string): Store {
  const data = (extname(file) === ".json" ? JSON.parse(text || "{}") : parseYaml(text)) as { services?: unknown } | null;
  const out: Store = {};
  const services = data?.services;
  if (!services || typeof services !== "object") return out;
  for (const [name, list] of Object.entries(services)) {
    if (!Array.isArray(list)) continue;
    out[name] = list.map((x) => parseInstance(name, x)).filter((x): x is Stored => x !== undefined);
  }
  return out;
}

function live(list: readonly Stored[], now: number): Instance[] {
  return list
    .filter((i) => i.expires === undefined || i.expires > now)
    .map(({ expires: _e, ...i }) => i);
}

export class FileRegistry implements Registry {
  readonly kind = "file";
  readonly #o: FileRegistryOptions;
  /** The file this registry writes: the file itself, or registrations.json in a directory. */
  #target = "";
  #isDir = false;
  readonly #watchers = new Map<string, Set<WatchListener>>();
  readonly #last = new Map<string, string>();
  /** Registrations this process keeps alive: service/id -> instance. */
  readonly #owned = new Map<string, Instance>();
  #fsWatcher?: FSWatcher;
  #pollTimer?: Timer;
  #renewTimer?: Timer;
  #failing = false;
  #closed = false;

  constructor(o: FileRegistryOptions) {
    this.#o = o;
  }

  async #settle(): Promise<void> {
    if (this.#target) return;
    const s = await stat(this.#o.path).catch(() => undefined);
    this.#isDir = s?.isDirectory() ?? this.#o.path.endsWith("/");
    if (this.#isDir) await mkdir(this.#o.path, { recursive: true });
    else await mkdir(dirname(this.#o.path), { recursive: true });
    this.#target = this.#isDir ? join(this.#o.path, "registrations.json") : this.#o.path;
  }

  /**
   * One file's registrations. `watching`: an empty file is an error, not an empty registry:
   * an editor or script that writes in place truncates first, and a watch that read that
   * moment would empty the cluster; an error keeps the last list until the file reads whole.
   */
  async #readFile(file: string, watching = false): Promise<Store> {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw err;
    }
    if (watching && text.trim() === "") throw new Error(`${file} is empty (being written?); keeping the last list`);
    return parseStore(text, file);
  }

  /** Everything every file says, merged (first file wins for a duplicate id). */
  async #readAll(): Promise<Store> {
    await this.#settle();
    if (!this.#isDir) return this.#readFile(this.#target, true);
    const names = (await readdir(this.#o.path)).filter((n) => DATA_EXT.has(extname(n)) && !n.startsWith(".")).sort();
    const merged: Store = {};
    for (const n of names) {
      const store = await this.#readFile(join(this.#o.path, n), true);
      for (const [svc, list] of Object.entries(store)) {
        const into = (merged[svc] ??= []);
        for (const i of list) if (!into.some((x) => x.id === i.id)) into.push(i);
      }
    }
    return merged;
  }

  async list(service: string): Promise<Instance[]> {
    return live((await this.#readAll())[service] ?? [], Date.now());
  }

  async services(): Promise<string[]> {
    const store = await this.#readAll();
    const now = Date.now();
    return Object.keys(store).filter((s) => live(store[s]!, now).length > 0).sort();
  }

  watch(service: string, listener: WatchListener): () => void {
    let set = this.#watchers.get(service);
    if (!set) this.#watchers.set(service, (set = new Set()));
    set.add(listener);
    this.#startWatching();
    // A new listener gets the current list at once.
    this.list(service).then(
      (list) => set.has(listener) && listener.update(list),
      (err: Error) => set.has(listener) && listener.error(err),
    );
    return () => {
      set.delete(listener);
      if (set.size === 0) {
        this.#watchers.delete(service);
        this.#last.delete(service);
      }
    };
  }

  #startWatching(): void {
    if (this.#pollTimer || this.#closed) return;
    // The poll also expires registrations whose sidecar died: no file event marks that.
    this.#pollTimer = setInterval(() => void this.#refresh(), this.#o.poll);
    void this.#settle().then(() => {
      if (this.#closed || this.#fsWatcher) return;
      try {
        // Watch the directory: a rename replaces the file, which a watch on the file would miss.
        const dir = this.#isDir ? this.#o.path : dirname(this.#target);
        const mine = basename(this.#target);
        this.#fsWatcher = fsWatch(dir, (_event, name) => {
          if (this.#isDir || !name || name === mine) void this.#refresh();
        });
        this.#fsWatcher.on("error", () => undefined); // the poll carries on
      } catch {
        // fs.watch is a shortcut; the poll alone is enough
      }
    });
  }

  #refreshing?: Promise<void>;
  #refresh(): Promise<void> {
    // One read at a time; a burst of events collapses into the read under way plus one more.
    this.#refreshing ??= this.#doRefresh().finally(() => (this.#refreshing = undefined));
    return this.#refreshing;
  }

  async #doRefresh(): Promise<void> {
    if (this.#watchers.size === 0) return;
    let store: Store;
    try {
      store = await this.#readAll();
    } catch (err) {
      this.#failing = true;
      for (const set of this.#watchers.values()) for (const l of set) l.error(err as Error);
      return;
    }
    const recovered = this.#failing;
    this.#failing = false;
    const now = Date.now();
    for (const [service, set] of this.#watchers) {
      const list = live(store[service] ?? [], now);
      const key = JSON.stringify(list);
      if (!recovered && this.#last.get(service) === key) continue;
      this.#last.set(service, key);
      for (const l of set) l.update(list);
    }
  }

  /**
   * Read-modify-write of the target file under a cross-process lock, written atomically.
   * The lock is a file created with O_EXCL; one older than 5 s is a dead writer's and is taken.
   * (Two waiters that both find a dead writer's lock could race on taking it; locks are held
   * for milliseconds, so that needs a writer to die holding one, and another just then.)
   */
  async #mutate(change: (store: Store, now: number) => void): Promise<void> {
    await this.#settle();
    const lock = `${this.#target}.lock`;
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        const fh = await open(lock, "wx");
        await fh.writeFile(String(process.pid));
        await fh.close();
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        const s = await stat(lock).catch(() => undefined);
        if (s && Date.now() - s.mtimeMs > LOCK_STALE_MS) await unlink(lock).catch(() => undefined);
        else if (Date.now() > deadline) throw new Error(`could not lock ${lock} within ${LOCK_WAIT_MS}ms`);
        else await Bun.sleep(5 + Math.random() * 20); // a lock wait, not a readiness wait
      }
    }
    try {
      const store = await this.#readFile(this.#target);
      const now = Date.now();
      change(store, now);
      // Drop what expired, so the file does not grow with dead sidecars' entries.
      for (const [svc, list] of Object.entries(store)) {
        store[svc] = list.filter((i) => i.expires === undefined || i.expires > now);
        if (store[svc]!.length === 0) delete store[svc];
      }
      const tmp = `${this.#target}.${process.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
      const body: Record<string, unknown[]> = {};
      for (const [svc, list] of Object.entries(store)) body[svc] = list.map(({ service: _s, ...rest }) => rest);
      const text = extname(this.#target) === ".json" || this.#isDir
        ? JSON.stringify({ services: body }, null, 2)
        : stringifyYaml({ services: body });
      await writeFile(tmp, text);
      await rename(tmp, this.#target);
    } finally {
      await unlink(lock).catch(() => undefined);
    }
    void this.#refresh();
  }

  async register(instance: Instance, options: RegisterOptions = {}): Promise<void> {
    const keepAlive = options.keepAlive ?? options.ttl === undefined;
    const ttl = options.ttl === undefined ? this.#o.ttl : options.ttl * 1000;
    const key = `${instance.service}/${instance.id}`;
    if (keepAlive) this.#owned.set(key, { ...instance });
    else this.#owned.delete(key);
    await this.#mutate((store, now) => {
      const list = (store[instance.service] ??= []).filter((i) => i.id !== instance.id);
      list.push({ ...instance, expires: now + ttl });
      store[instance.service] = list;
    });
    if (keepAlive) this.#startRenewing();
  }

  async deregister(service: string, id: string): Promise<void> {
    this.#owned.delete(`${service}/${id}`);
    await this.#mutate((store) => {
      if (store[service]) store[service] = store[service].filter((i) => i.id !== id);
    });
  }

  async setStatus(service: string, id: string, status: InstanceStatus): Promise<void> {
    const own = this.#owned.get(`${service}/${id}`);
    if (own) own.status = status;
    await this.#mutate((store) => {
      for (const i of store[service] ?? []) if (i.id === id) i.status = status;
    });
  }

  #startRenewing(): void {
    if (this.#renewTimer || this.#closed) return;
    this.#renewTimer = setInterval(() => {
      if (this.#owned.size === 0) return;
      this.#mutate((store, now) => {
        for (const inst of this.#owned.values()) {
          // Re-adds an entry someone removed by hand while we still run: we are alive.
          const list = (store[inst.service] ??= []).filter((i) => i.id !== inst.id);
          list.push({ ...inst, expires: now + this.#o.ttl });
          store[inst.service] = list;
        }
      }).catch((err: Error) => console.error(`mesher: file registry renewal failed: ${err.message}`));
    }, Math.max(100, this.#o.ttl / 3));
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#pollTimer);
    clearInterval(this.#renewTimer);
    this.#fsWatcher?.close();
    this.#watchers.clear();
    await this.#refreshing;
  }
}
