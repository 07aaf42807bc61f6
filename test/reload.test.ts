/**
 * Live config changes through the CLI: edits to the config file are picked up while requests
 * keep flowing; an invalid edit is refused and the old config keeps serving.
 */
import { afterAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnMesher, startApp, tempDir, viaProxy, type Spawned } from "./helpers.ts";

const one = startApp(async (req) => {
  if (new URL(req.url).pathname === "/slow") await Bun.sleep(400);
  return new Response("one");
});
const two = startApp(() => new Response("two"));

const config = (services: Record<string, unknown>) =>
  JSON.stringify({ service: { name: "shop" }, listen: { consumer: "127.0.0.1:0", admin: "127.0.0.1:0" }, services }, null, 2);

const dir = tempDir({ "mesher.config.json": config({ echo: { endpoints: [`127.0.0.1:${one.port}`] } }) });
const file = join(dir, "mesher.config.json");
let mesher: Spawned | undefined;

afterAll(async () => {
  mesher?.proc.kill();
  await mesher?.proc.exited;
  one.stop(true);
  two.stop(true);
});

async function until(what: string, check: () => Promise<boolean>, limitMs = 15_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (Date.now() < end) {
    if (await check()) return;
    await Bun.sleep(25);
  }
  throw new Error(`timed out waiting for ${what}; mesher said:\n${mesher?.lines.join("\n")}`);
}

test("config edits under steady load: zero failed requests, the new settings apply, invalid edits are refused", async () => {
  mesher = await spawnMesher(["-c", file]);
  const proxy = `http://${mesher.consumer}`;
  const admin = `http://${mesher.admin}`;
  const version = async () => (await (await fetch(`${admin}/config_dump`)).json()).version as number;
  expect(await version()).toBe(1);

  // Steady load: 4 loops of back-to-back requests until told to stop.
  const seen: Record<string, number> = {};
  const failures: string[] = [];
  let running = true;
  const loops = Array.from({ length: 4 }, async () => {
    while (running) {
      try {
        const r = await viaProxy(proxy, "http://echo/");
        const text = await r.text();
        if (r.status !== 200) failures.push(`${r.status} ${text}`);
        else seen[text] = (seen[text] ?? 0) + 1;
      } catch (err) {
        failures.push(String(err));
      }
    }
  });
  await until("traffic to flow", async () => (seen.one ?? 0) > 20);

  // A request in flight on the old pipeline when the swap happens finishes normally.
  const inflight = viaProxy(proxy, "http://echo/slow");
  writeFileSync(file, config({ echo: { endpoints: [`127.0.0.1:${two.port}`] } }));
  await until("the edit to take effect", async () => (seen.two ?? 0) > 20);
  const slow = await inflight;
  expect(slow.status).toBe(200);
  expect(await slow.text()).toBe("one");
  expect(await version()).toBe(2);

  // An invalid edit: logged, refused, the old config keeps serving.
  writeFileSync(file, config({ echo: { endpoints: ["not an address"] } }));
  await until("the refusal to be logged", async () => mesher!.lines.some((l) => l.includes("config reload refused")));
  const before = seen.two!;
  await until("traffic to keep flowing", async () => seen.two! > before + 20);
  expect(await version()).toBe(2);
  running = false;
  await Promise.all(loops);
  expect(failures).toEqual([]);
  expect(mesher.lines.join("\n")).toContain("services.echo.endpoints[0]");

  // Reload on demand: GET is refused, POST reports the config's problems.
  expect((await fetch(`${admin}/v1/mesher/reload`)).status).toBe(405);
  const bad = await fetch(`${admin}/v1/mesher/reload`, { method: "POST" });
  expect(bad.status).toBe(400);
  expect((await bad.json()).error.message).toContain("services.echo.endpoints[0]");

  // A key absent at boot (a rate limit) takes effect when added.
  writeFileSync(file, config({ echo: { endpoints: [`127.0.0.1:${two.port}`], rateLimit: { rate: 0.01, burst: 1 } } }));
  await until("the new rate limit", async () => {
    const r = await viaProxy(proxy, "http://echo/");
    await r.text();
    return r.status === 429;
  });
  const forced = await fetch(`${admin}/v1/mesher/reload`, { method: "POST" });
  expect(forced.status).toBe(200);
  expect((await forced.json()).version).toBe((await version()));
  // The bucket survived the forced reload (the setting did not change): still limited.
  expect((await viaProxy(proxy, "http://echo/")).status).toBe(429);
});
