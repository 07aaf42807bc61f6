import { expect, test } from "bun:test";
import { consistentHash } from "./consistentHash.ts";
import { eps, fakeCtx } from "./testing.ts";

test("the same header value always lands on the same endpoint", () => {
  const e = eps(4);
  const lb = consistentHash({ header: "x-user" });
  for (const user of ["ann", "bob", "cy", "dee"]) {
    const first = lb.pick(e, fakeCtx({ "x-user": user }));
    for (let i = 0; i < 5; i++) expect(lb.pick(e, fakeCtx({ "x-user": user }))).toBe(first!);
  }
});

test("keys spread over endpoints, and removing one moves only its keys", () => {
  const e = eps(4);
  const lb = consistentHash({ sourceIp: true });
  const before = new Map<string, string>();
  for (let i = 0; i < 2000; i++) before.set(`10.0.${i >> 8}.${i & 255}`, lb.pick(e, fakeCtx({}, `10.0.${i >> 8}.${i & 255}`))!.address);
  const counts: Record<string, number> = {};
  for (const a of before.values()) counts[a] = (counts[a] ?? 0) + 1;
  for (const a of ["a:1", "b:1", "c:1", "d:1"]) expect(counts[a]!).toBeGreaterThan(250);
  const without = e.filter((x) => x.address !== "b:1");
  let moved = 0;
  for (const [ip, a] of before) {
    const now = lb.pick(without, fakeCtx({}, ip))!.address;
    if (a !== "b:1" && now !== a) moved++;
  }
  expect(moved).toBe(0);
});

test("cookie key; no key falls back to round-robin", () => {
  const e = eps(3);
  const lb = consistentHash({ cookie: "sid" });
  const a = lb.pick(e, fakeCtx({ cookie: "sid=42" }));
  expect(lb.pick(e, fakeCtx({ cookie: "other=1; sid=42" }))).toBe(a!);
  const rr = [0, 1, 2].map(() => lb.pick(e, fakeCtx())!.address).sort();
  expect(rr).toEqual(["a:1", "b:1", "c:1"]);
});
