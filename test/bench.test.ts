import { expect, test } from "bun:test";
import { run } from "./helpers.ts";

// The benchmark itself never runs in CI; this runs its harness in smoke mode (1 s per row)
// to keep `bun run bench` working. It needs wrk and nginx (Debian: wrk, nginx-light).
const tools = Boolean(Bun.which("wrk") && Bun.which("nginx", { PATH: `${process.env.PATH}:/usr/sbin` }));

test.skipIf(!tools)("bun run bench --smoke prints a row for each path", async () => {
  const r = await run(["bun", "bench/run.ts", "--smoke"]);
  expect(r.stderr).not.toContain("error:");
  expect(r.code).toBe(0);
  for (const label of ["app direct", "mesher, 1 hop", "mesher, 2 hops", "nginx"]) {
    // Closed-loop row: a req/s figure, then p50/p99; fixed-rate row: the achieved rate.
    const rows = r.stdout.split("\n").filter((l) => l.startsWith(`| ${label} | `));
    expect(rows.length).toBe(2);
    const cells = rows[0]!.split("|").map((c) => c.trim());
    expect(Number(cells[2])).toBeGreaterThan(0); // req/s
    expect(cells[9]).toBe("0"); // errors
  }
  expect(r.stdout).toMatch(/\| one \| \d+\.\d \|/); // peak RSS of the 1-hop mesher
  expect(r.stdout).toMatch(/\| two-provider \| \d+\.\d \|/);
}, 30_000);
