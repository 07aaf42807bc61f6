/**
 * Watches the files a config was read from (the config file and whatever it includes) and
 * calls back once per burst of changes. Directories are watched, not the files themselves:
 * editors and `mv` replace a file with a new inode, which a file watch would lose.
 */
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname, resolve } from "node:path";

export interface ConfigWatcher {
  /** Adds files to the watched set (the set only grows: a file an older version read may come back). */
  add(files: readonly string[]): void;
  readonly files: readonly string[];
  close(): void;
}

export function watchConfigFiles(files: readonly string[], onChange: () => void, debounceMs = 100): ConfigWatcher {
  const names = new Map<string, Set<string>>(); // dir -> basenames
  const watchers = new Map<string, FSWatcher>();
  const all = new Set<string>();
  let timer: Timer | undefined;

  const fire = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  };

  function add(list: readonly string[]): void {
    for (const f of list) {
      const path = resolve(f);
      if (all.has(path)) continue;
      all.add(path);
      const dir = dirname(path);
      let set = names.get(dir);
      if (!set) {
        names.set(dir, (set = new Set()));
        const w = watch(dir, (_event, filename) => {
          if (filename === null || set!.has(basename(String(filename)))) fire();
        });
        w.on("error", () => {}); // a directory removed under us: nothing left to watch there
        watchers.set(dir, w);
      }
      set.add(basename(path));
    }
  }
  add(files);
  return {
    add,
    get files() {
      return [...all];
    },
    close() {
      clearTimeout(timer);
      for (const w of watchers.values()) w.close();
    },
  };
}
