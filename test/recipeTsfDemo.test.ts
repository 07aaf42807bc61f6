import { expect, test } from "bun:test";
import { run } from "./helpers.ts";
import { startSkyWalkingReceiver } from "./receivers/skywalking.ts";

test("bun recipes/tsf-demo/run.ts: one request, one trace chained user -> shop -> promotion; SkyWalking gets it too", async () => {
  const oap = await startSkyWalkingReceiver();
  try {
    const r = await run(["bun", "recipes/tsf-demo/run.ts", "--skywalking", oap.address]);
    expect(r.code).toBe(0);
    const traceId = /^trace ([0-9a-f]{32})$/m.exec(r.stdout)?.[1];
    expect(traceId).toBeDefined();
    const tree = r.stdout
      .split("\n")
      .filter((l) => / span [0-9a-f]{16}$/.test(l))
      .map((l) => l.replace(/ "[^"]*" .*$/, ""));
    expect(tree).toEqual(["  user server", "    user client", "      shop server", "        shop client", "          promotion server"]);
    await oap.waitFor((o) => o.segments.filter((s) => s.traceId === traceId).length === 5);
  } finally {
    await oap.stop();
  }
});
