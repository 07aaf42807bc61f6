import { expect, test } from "bun:test";
import { sessionSticky } from "./sessionSticky.ts";
import { eps, fakeCtx } from "./testing.ts";
import type { Ctx } from "../pipeline/types.ts";

test("a session header keeps going to the same endpoint", () => {
  const e = eps(3);
  const lb = sessionSticky({ header: "x-user" });
  const first = lb.pick(e, fakeCtx({ "x-user": "ann" }))!;
  lb.pick(e, fakeCtx({ "x-user": "bob" }));
  for (let i = 0; i < 5; i++) expect(lb.pick(e, fakeCtx({ "x-user": "ann" }))).toBe(first);
});

test("falls back when the sticky endpoint is gone or keeps failing", () => {
  const e = eps(3);
  const lb = sessionSticky({ header: "x-user", failures: 2 });
  const ctx = () => fakeCtx({ "x-user": "ann" });
  const first = lb.pick(e, ctx())!;
  const others = e.filter((x) => x !== first);
  const moved = lb.pick(others, ctx())!;
  expect(moved).not.toBe(first);
  expect(lb.pick(e, ctx())).toBe(moved); // the session now lives on the new one
  lb.done!(ctx(), moved, 1, true);
  lb.done!(ctx(), moved, 1, true);
  // two failures in a row: the session is dropped and re-balanced
  const again = lb.pick(e, ctx())!;
  expect(lb.pick(e, ctx())).toBe(again);
});

test("with a cookie and no session, a Set-Cookie is answered and then honoured", () => {
  const e = eps(3);
  const lb = sessionSticky({ cookie: "sid" });
  const ctx = fakeCtx() as Ctx & { res?: Response };
  const first = lb.pick(e, ctx)!;
  ctx.res = new Response("ok");
  lb.done!(ctx, first, 1, false);
  const cookie = ctx.res.headers.get("set-cookie")!;
  expect(cookie).toMatch(/^sid=[0-9a-f-]+; Path=\/; HttpOnly$/);
  const sid = cookie.split(";")[0]!;
  for (let i = 0; i < 4; i++) expect(lb.pick(e, fakeCtx({ cookie: `x=1; ${sid}` }))).toBe(first);
});
