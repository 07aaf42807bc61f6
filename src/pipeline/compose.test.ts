import { expect, test } from "bun:test";
import { compose } from "./compose.ts";
import type { Ctx, Handler } from "./types.ts";

test("handlers run in order around next(), like Hono middleware", async () => {
  const seen: string[] = [];
  const h = (name: string): Handler => async (_ctx, next) => {
    seen.push(`${name}>`);
    await next();
    seen.push(`<${name}`);
  };
  await compose([h("a"), h("b"), h("c")])({} as Ctx);
  expect(seen).toEqual(["a>", "b>", "c>", "<c", "<b", "<a"]);
});

test("a handler may run the rest of the chain again (retries)", async () => {
  let calls = 0;
  const retry: Handler = async (_ctx, next) => {
    await next();
    await next();
  };
  await compose([retry, () => void calls++])({} as Ctx);
  expect(calls).toBe(2);
});

test("a handler that does not call next() ends the chain; errors propagate", async () => {
  let reached = false;
  await compose([() => {}, () => void (reached = true)])({} as Ctx);
  expect(reached).toBe(false);
  await expect(compose([() => { throw new Error("boom"); }])({} as Ctx)).rejects.toThrow("boom");
});
