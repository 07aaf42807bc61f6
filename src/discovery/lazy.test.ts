import { describe, expect, test } from "bun:test";
import { memoryRegistry } from "../../test/memoryRegistry.ts";
import { LazyRegistry } from "./lazy.ts";
import type { Instance } from "./types.ts";

const inst: Instance = { id: "a", service: "cart", addresses: { http: "127.0.0.1:1" }, tags: {}, status: "UP" };

/** A backend whose load the test settles by hand. */
function deferred() {
  const backend = memoryRegistry();
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const load = new Promise<typeof backend>((res, rej) => ((resolve = () => res(backend)), (reject = rej)));
  return { backend, registry: new LazyRegistry("memory", () => load), resolve, reject };
}

describe("LazyRegistry", () => {
  test("calls and watches made while the backend loads are served once it has", async () => {
    const d = deferred();
    const seen: Instance[][] = [];
    d.registry.watch("cart", { update: (i) => seen.push(i), error: () => {} });
    const registered = d.registry.register(inst);
    expect(seen).toEqual([]);
    d.resolve();
    await registered;
    expect(await d.registry.list("cart")).toEqual([inst]);
    for (let i = 0; i < 100 && !seen.some((s) => s.length === 1); i++) await Bun.sleep(1);
    expect(seen.at(-1)).toEqual([inst]);
    await d.registry.close();
  });

  test("a watch stopped before the backend loaded never starts", async () => {
    const d = deferred();
    const stop = d.registry.watch("cart", { update: () => {}, error: () => {} });
    stop();
    d.resolve();
    await d.registry.list("cart");
    expect(d.backend.watchCount()).toBe(0);
  });

  test("a backend that fails to load fails calls and reports to watches", async () => {
    const d = deferred();
    const errors: string[] = [];
    d.registry.watch("cart", { update: () => {}, error: (e) => errors.push(e.message) });
    d.reject(new Error("Cannot find package 'etcd3'"));
    await expect(d.registry.list("cart")).rejects.toThrow("etcd3");
    expect(errors).toEqual(["Cannot find package 'etcd3'"]);
    await d.registry.close(); // nothing to close
  });
});
