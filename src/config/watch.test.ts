import { expect, test } from "bun:test";
import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { watchConfigFiles } from "./watch.ts";

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await Bun.sleep(10);
  expect(check()).toBe(true);
}

test("edits in place and saves by rename both trigger one callback per burst; other files do not", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mesher-watch-"));
  const file = join(dir, "mesher.config.json");
  writeFileSync(file, "{}");
  let calls = 0;
  const w = watchConfigFiles([file], () => calls++, 30);
  try {
    writeFileSync(file, '{"a":1}');
    writeFileSync(file, '{"a":2}');
    await until(() => calls === 1);
    writeFileSync(join(dir, "tmp"), '{"a":3}');
    renameSync(join(dir, "tmp"), file);
    await until(() => calls === 2);
    writeFileSync(join(dir, "unrelated.txt"), "x");
    await Bun.sleep(100);
    expect(calls).toBe(2);
    const extra = join(dir, "router.yaml");
    w.add([extra]);
    writeFileSync(extra, "routeRule: {}");
    await until(() => calls === 3);
    expect(w.files).toEqual([file, extra]);
  } finally {
    w.close();
  }
});
