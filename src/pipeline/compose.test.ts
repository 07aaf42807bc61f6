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

test("a handler that throws synchronously rejects next(): the handler before can catch it", async () => {
  const seen: string[] = [];
  const outer: Handler = async (_ctx, next) => {
    try {
      await next();
    } catch (err) {
      seen.push(`caught ${(err as Error).message}`);
    }
  };
  const pass: Handler = (_ctx, next) => next();
  const chain = compose([outer, pass, () => { throw new Error("sync"); }]);
  const p = chain({} as Ctx);
  expect(p).toBeInstanceOf(Promise);
  await p;
  expect(seen).toEqual(["caught sync"]);
  // Without a catcher the chain's promise rejects rather than the call throwing.
  const bare = compose([pass, () => { throw new Error("bare"); }]);
  let threw = false;
  let rejected: Promise<void> | undefined;
  try {
    rejected = bare({} as Ctx);
  } catch {
    threw = true;
  }
  expect(threw).toBe(false);
  await expect(rejected!).rejects.toThrow("bare");
});
