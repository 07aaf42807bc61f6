/**
 * Certificate files that reload when they change on disk. One watcher per directory for the
 * whole process (unref'd, so it never keeps the process alive): a cert manager usually
 * replaces files by rename, which a watch on the file itself would miss.
 */
import { readFileSync, watch, type FSWatcher } from "node:fs";
import { basename, dirname, resolve } from "node:path";

interface Entry {
  text: string;
  listeners: Set<() => void>;
}

const files = new Map<string, Entry>();
const watchers = new Map<string, FSWatcher>();

function read(path: string): string {
  return readFileSync(path, "utf8");
}

function onDirChange(dir: string, name: string | null): void {
  for (const [path, entry] of files) {
    if (dirname(path) !== dir || (name && basename(path) !== name && !path.endsWith(`/${name}`))) continue;
    let text: string;
    try {
      text = read(path);
    } catch {
      continue; // mid-replace: the next event brings the new file
    }
    if (text === entry.text || !text.trim()) continue;
    entry.text = text;
    for (const fn of entry.listeners) fn();
  }
}

/** A file's current text, kept up to date. Throws when the file cannot be read now. */
export function watchedFile(file: string): { readonly text: string } {
  const path = resolve(file);
  let entry = files.get(path);
  if (!entry) {
    entry = { text: read(path), listeners: new Set() };
    files.set(path, entry);
    const dir = dirname(path);
    if (!watchers.has(dir)) {
      const w = watch(dir, (_event, name) => onDirChange(dir, name ? String(name) : null));
      w.unref?.();
      watchers.set(dir, w);
    }
  }
  const e = entry;
  return {
    get text() {
      return e.text;
    },
  };
}

/** Calls `fn` whenever one of `paths` changes; returns the unsubscribe function. */
export function onFilesChange(paths: string[], fn: () => void): () => void {
  const entries = paths.map((p) => {
    watchedFile(p);
    return files.get(resolve(p))!;
  });
  for (const e of entries) e.listeners.add(fn);
  return () => {
    for (const e of entries) e.listeners.delete(fn);
  };
}
