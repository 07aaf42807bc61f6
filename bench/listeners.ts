/**
 * Throughput of the consumer listener engines (docs/listeners.md): a hello-world app, and a
 * mesher whose consumer forwards to it, with CONNECT on (node:http engine) and off (Bun.serve).
 * Run: bun bench/listeners.ts [seconds] [rounds]   (needs wrk; rounds alternate the engines,
 * since other load on a shared machine moves the figures more than the engines do)
 */
import { startMesher } from "../src/server.ts";
import { resolveConfig } from "../src/config/resolve.ts";

const seconds = Number(process.argv[2] ?? 5);
const rounds = Number(process.argv[3] ?? 1);

async function wrk(url: string, host?: string): Promise<{ rps: number; p50: string }> {
  const args = ["wrk", "-t1", "-c32", `-d${seconds}s`, "--latency", ...(host ? ["-H", `Host: ${host}`] : []), url];
  const warm = Bun.spawn(["wrk", "-t1", "-c32", "-d2s", ...(host ? ["-H", `Host: ${host}`] : []), url], { stdout: "ignore" });
  await warm.exited;
  const p = Bun.spawn(args, { stdout: "pipe" });
  const out = await new Response(p.stdout).text();
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0), p50: /^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? "?" };
}

// The app in a child process, so it does not share the proxy's event loop.
const app = Bun.spawn(["bun", "-e", `const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("hello") }); console.log(s.port);`], { stdout: "pipe" });
const reader = app.stdout.getReader();
const port = Number(new TextDecoder().decode((await reader.read()).value).trim());

const rows: string[] = [];
rows.push(`| app direct (Bun.serve) | ${Object.values(await wrk(`http://127.0.0.1:${port}/`)).join(" | ")} |`);
const meshers = [false, true].map((connect) => ({
  connect,
  m: startMesher(
    resolveConfig({
      service: { name: "bench" },
      listen: { consumer: "127.0.0.1:0", admin: false, connect },
      services: { hello: { endpoints: [`127.0.0.1:${port}`] } },
    }),
  ),
}));
for (let round = 0; round < rounds; round++) {
  for (const { connect, m } of meshers) {
    const r = await wrk(`http://${m.addresses.consumer}/`, "hello");
    rows.push(`| mesher consumer, connect: ${connect} (${connect ? "node:http" : "Bun.serve"}) | ${r.rps} | ${r.p50} |`);
  }
}
for (const { m } of meshers) await m.stop();
app.kill();
console.log("| path | requests/s | p50 |\n| --- | --- | --- |\n" + rows.join("\n"));
process.exit(0);
