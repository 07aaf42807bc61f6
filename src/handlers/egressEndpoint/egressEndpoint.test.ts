import { describe, expect, test } from "bun:test";
import { compose } from "../../pipeline/compose.ts";
import type { Ctx } from "../../pipeline/types.ts";
import { testCtx, testEnv } from "../testing.ts";
import { egressEndpoint } from "./index.ts";

describe("egressEndpoint", () => {
  test("the endpoint is the host on the chosen port, the same object on every attempt", async () => {
    const env = testEnv({});
    const seen: string[] = [];
    const objects = new Set<unknown>();
    const chain = compose([
      egressEndpoint(env),
      async (ctx: Ctx) => {
        seen.push(ctx.endpoint!.address);
        objects.add(ctx.endpoint);
      },
    ]);
    for (let i = 0; i < 2; i++) {
      const ctx = testCtx(env, "api.example.com");
      ctx.port = "8443";
      await chain(ctx);
    }
    const bare = testCtx(env, "plain.example.com");
    await chain(bare);
    expect(seen).toEqual(["api.example.com:8443", "api.example.com:8443", "plain.example.com:80"]);
    expect(objects.size).toBe(2);
  });
});
