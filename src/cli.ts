#!/usr/bin/env bun
/**
 * The `mesher` command. Before anything loads, it settles how the JavaScript engine runs, then
 * hands over to command.ts.
 *
 * JSC's top JIT tier (FTL) is off unless the environment sets `BUN_JSC_useFTLJIT`: the process
 * re-executes itself (execve: same PID, same stdio) with `BUN_JSC_useFTLJIT=0`, since JSC reads
 * its options once, at start. Measured on the fast path (bench/NOTES.md, change 18):
 * closed-loop throughput the same, +0.2-0.4 µs of CPU per request, and 7-9 MB less peak RSS
 * (FTL's compiler code and what it compiles); on the regular engine, which runs more JavaScript
 * per request, 3-4% fewer req/s. `BUN_JSC_useFTLJIT=1` keeps FTL.
 */
if (process.env.BUN_JSC_useFTLJIT === undefined && typeof process.execve === "function") {
  try {
    process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], { ...process.env, BUN_JSC_useFTLJIT: "0" });
  } catch {
    // Not re-executed (e.g. the binary cannot be run again): carry on with FTL.
  }
}
await import("./command.ts");
export {};
