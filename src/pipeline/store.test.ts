import { expect, test } from "bun:test";
import { StateStore } from "./store.ts";

test("a sweep keeps what was asked for since the last one", () => {
  const s = new StateStore();
  s.set("a", 1);
  s.set("b", 2);
  s.get("a");
  s.get("b");
  s.sweep();
  expect([...s.keys()]).toEqual(["a", "b"]);
  s.get("a");
  s.sweep();
  expect([...s.keys()]).toEqual(["a"]);
});
