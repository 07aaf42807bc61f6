/**
 * Live reload of an included file: editing a Mesher router.yaml the config includes changes
 * the routing of a running CLI sidecar; a broken edit is refused and the old rules keep serving.
 * And SIGINT (Ctrl-C) stops the CLI with exit status 0, as SIGTERM does.
 */
import { afterAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnMesher, startEchoApp, tempDir, viaProxy, type Spawned } from "./helpers.ts";

const v1 = startEchoApp("v1");
const v2 = startEchoApp("v2");
const router = (version: string) => `routeRule:\n  reviews:\n    - precedence: 1\n      route:\n        - { tags: { version: ${version} }, weight: 100 }\n`;
const dir = tempDir({
  "router.yaml": router("v1"),
  "mesher.yaml": [
    "service: { name: productpage }",
    'listen: { consumer: "127.0.0.1:0", admin: "127.0.0.1:0" }',
    "include: [router.yaml]",
    "services:",
    "  reviews:",
    "    endpoints:",
    `      - { address: "127.0.0.1:${v1.port}", tags: { version: v1 } }`,
    `      - { address: "127.0.0.1:${v2.port}", tags: { version: v2 } }`,
    "",
  ].join("\n"),
});
let m: Spawned | undefined;
afterAll(async () => {
  m?.proc.kill();
  await m?.proc.exited;
  v1.stop(true);
  v2.stop(true);
});

async function who(proxy: string): Promise<string> {
  const r = await viaProxy(proxy, "http://reviews/r");
  return ((await r.json()) as { app: string }).app;
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await Bun.sleep(25);
  }
  throw new Error(`timed out waiting for ${what}; mesher said:\n${m?.lines.join("\n")}`);
}

test("an edit to an included router.yaml re-routes a running sidecar; a broken edit is refused", async () => {
  m = await spawnMesher(["-c", join(dir, "mesher.yaml")]);
  const proxy = `http://${m.consumer}`;
  for (let i = 0; i < 5; i++) expect(await who(proxy)).toBe("v1");

  writeFileSync(join(dir, "router.yaml"), router("v2"));
  await until("the new rule", async () => (await who(proxy)) === "v2");
  for (let i = 0; i < 5; i++) expect(await who(proxy)).toBe("v2");

  writeFileSync(join(dir, "router.yaml"), "routeRule:\n  reviews:\n    - precedence: one\n");
  await until("the refusal", async () => m!.lines.some((l) => l.includes("config reload refused")));
  expect(m.lines.join("\n")).toContain("precedence");
  for (let i = 0; i < 5; i++) expect(await who(proxy)).toBe("v2");

  m.proc.kill("SIGINT");
  expect(await m.proc.exited).toBe(0);
  m = undefined;
});
