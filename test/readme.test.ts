import { expect, test } from "bun:test";
import { join } from "node:path";
import { configReference } from "../src/config/reference.ts";
import { ROOT } from "./helpers.ts";

test("the README's config reference is the one generated from the schema", async () => {
  const readme = await Bun.file(join(ROOT, "README.md")).text();
  const m = /<!-- config-reference:start -->\n([\s\S]*?)\n?<!-- config-reference:end -->/.exec(readme);
  expect(m).not.toBeNull();
  // Regenerate with: bun src/config/reference.ts --write
  expect(m![1]!.trim()).toBe(configReference().trim());
});
