/**
 * `bun run bench`: the app reached directly, through one mesher hop, through two hops
 * (consumer sidecar -> provider sidecar) and through nginx (one worker, upstream keep-alive),
 * measured in ONE interleaved run on this machine, so the ratios are fair even when the
 * machine's speed drifts. Closed-loop with wrk, then open-loop at a fixed rate with
 * bench/loadgen.ts (wrk2 is not in Debian). Each mesher's peak RSS is read after its first
 * minute at the fixed rate (before any closed-loop run) and at the end. See bench/NOTES.md
 * and docs/perf.md.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { checkAlive, cpuSeconds, peakRssMB, ROOT, setStderrDir, socketCount, startApp, startCollector, startMesher, startNginx, stopAll, type Proc } from "./procs.ts";

const HELP = `bun run bench [-- options]

  --duration S      seconds per closed-loop (wrk) measurement (default 5)
  --rounds N        interleaved rounds; each row's figures are the median (default 2)
  --warmup S        seconds of wrk per row before measuring (default 2; Bun's first run has a tail)
  --connections N   wrk connections (default 32)
  --threads N       wrk threads (default 1)
  --rate R          fixed-rate mode: requests/s (default 3000; 0 skips the mode)
  --fixed S         seconds per fixed-rate measurement (default 5)
  --memory S        seconds at the fixed rate from each mesher's start, after which its peak
                    RSS is read (default 60: RSS grows for a minute before it levels off)
  --rows LIST       rows to run, comma list of direct,one,two,nginx (default) and
                    one-untraced, two-untraced (the same meshers without tracing),
                    one-otlphttp (1 hop exporting over OTLP/HTTP instead of OTLP/gRPC),
                    one-regular, two-regular (the regular engine only: listen.fastPath false),
                    one-fetch, two-fetch (regular engine with Bun's fetch as the upstream
                    client: MESHER_UPSTREAM_CLIENT=fetch),
                    one-200 (one hop to a service of 200 endpoints, all served by the app),
                    nginx-200 (nginx with the same 200 upstream servers, round robin),
                    one-bunserve (regular engine on Bun.serve: listen.connect false)
  --sampler X       tracing.sampler of every mesher row (default 0.01: the issue's "tracing
                    sampled at 1%"), spans exported over OTLP/gRPC to bench/collector.ts;
                    0: tracing off
  --path P          request path: / (hello world, default), /bytes/1024, /bytes/1048576 ...
  --soak S          instead of the table: S seconds at half the 1-hop capacity (or --rate if
                    given) through the first of --rows (default one: one mesher hop), 5% of
                    clients leaving mid-response; prints the mesher's RSS and sockets over time
  --smoke           a few seconds in all: 1 s per row, no warm-up, 500 req/s (for the test)
  --cpu-prof        run the meshers with bun --cpu-prof (profiles written to bench/profiles)

Environment: BUN_JSC_useFTLJIT=1 runs the meshers with JSC's FTL tier, which mesher turns off
unless told (src/cli.ts); the meshers inherit the bench's environment.
`;

const { values: o } = parseArgs({
  options: {
    duration: { type: "string", default: "5" },
    rounds: { type: "string", default: "2" },
    warmup: { type: "string", default: "2" },
    connections: { type: "string", default: "32" },
    threads: { type: "string", default: "1" },
    rate: { type: "string", default: "3000" },
    fixed: { type: "string", default: "5" },
    memory: { type: "string", default: "60" },
    rows: { type: "string", default: "direct,one,two,nginx" },
    path: { type: "string", default: "/" },
    sampler: { type: "string", default: "0.01" },
    smoke: { type: "boolean", default: false },
    soak: { type: "string" },
    "cpu-prof": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (o.help) {
  console.log(HELP);
  process.exit(0);
}
if (o.smoke) Object.assign(o, { duration: "1", rounds: "1", warmup: "0", rate: "500", fixed: "1", memory: "1" });
const duration = Number(o.duration);
const rounds = Number(o.rounds);
const warmup = Number(o.warmup);
const rate = Number(o.rate);
const fixed = Number(o.fixed);
const memory = Number(o.memory);
// A soak runs one 1-hop row: "one", or the first of --rows when given (e.g. one-otlphttp).
const rowsGiven = process.argv.some((a) => a.startsWith("--rows"));
const wanted = new Set(o.soak ? [rowsGiven ? o.rows.split(",")[0]! : "one"] : o.rows.split(","));
const rateGiven = process.argv.some((a) => a.startsWith("--rate"));

interface Row {
  key: string;
  label: string;
  /** Where wrk connects, and the Host it sends. */
  address: string;
  host: string;
  /** Processes whose CPU and memory are the proxy's (empty for direct). */
  proxies: Proc[];
  closed: { rps: number; p50: number; p99: number; errors: number; cpu: number }[];
  fixed: { rate: number; p50: number; p99: number; errors: number; cpu: number }[];
  /** Most open sockets seen in the proxy processes halfway through a closed-loop run. */
  sockets: number;
}

const dir = mkdtempSync(join(tmpdir(), "mesher-bench-"));
process.on("exit", () => {
  stopAll();
  rmSync(dir, { recursive: true, force: true });
});
process.on("SIGINT", () => process.exit(130));

setStderrDir(dir);
const profArgs = o["cpu-prof"] ? ["--cpu-prof", "--cpu-prof-dir", join(ROOT, "bench/profiles")] : [];
const app = await startApp(wanted.has("one-200") || wanted.has("nginx-200") ? 199 : 0);
const sampler = Number(o.sampler);
const spansFile = join(dir, "spans");
const collector = sampler > 0 ? await startCollector(spansFile) : undefined;
/** A row's mesher config with the tracing every mesher row has (sampled share `--sampler`). */
const traced = (config: Record<string, unknown>, protocol: "grpc" | "http/protobuf" = "grpc") =>
  collector
    ? { ...config, tracing: { sampler, otlp: protocol === "grpc" ? { endpoint: `http://${collector.address}` } : { endpoint: `http://${collector.extra.http}`, protocol } } }
    : config;
const rows: Row[] = [];
const row = (key: string, label: string, address: string, host: string, proxies: Proc[]) => {
  if (wanted.has(key)) rows.push({ key, label, address, host, proxies, closed: [], fixed: [], sockets: 0 });
};
row("direct", "app direct", app.address, "app", []);
/** A one-hop row (when wanted): a mesher whose consumer port sends Host "app" to `endpoints`. */
async function oneHop(
  key: string,
  label: string,
  o: { listen?: Record<string, unknown>; endpoints?: string[]; env?: Record<string, string>; untraced?: boolean; otlpHttp?: boolean } = {},
): Promise<void> {
  if (!wanted.has(key)) return;
  const config = {
    service: { name: "bench" },
    listen: { consumer: "127.0.0.1:0", admin: false, ...o.listen },
    services: { app: { endpoints: o.endpoints ?? [app.address] } },
  };
  const m = await startMesher(key, dir, o.untraced ? config : traced(config, o.otlpHttp ? "http/protobuf" : "grpc"), profArgs, o.env);
  row(key, label, m.address, "app", [m]);
}
await oneHop("one", "mesher, 1 hop");
await oneHop("one-untraced", "mesher, 1 hop, no tracing", { untraced: true });
// Tracing exported over OTLP/HTTP (tracing.otlp.protocol "http/protobuf"): no gRPC stack loaded.
await oneHop("one-otlphttp", "mesher, 1 hop, OTLP/HTTP", { otlpHttp: true });
// The consumer port on Bun.serve (listen.connect: false; no HTTPS_PROXY/CONNECT) instead of node:http.
await oneHop("one-bunserve", "mesher, 1 hop, connect: false", { listen: { connect: false, fastPath: false } });
if (wanted.has("one-200")) {
  const endpoints = app.extra.ports!.split(" ").map((p) => `127.0.0.1:${p}`);
  await oneHop("one-200", `mesher, 1 hop, ${endpoints.length} endpoints`, { endpoints });
}
// The same hop without the fast path: what a request with routes or policies goes through.
await oneHop("one-regular", "mesher, 1 hop, regular engine", { listen: { fastPath: false } });
// The regular engine with Bun's fetch as the upstream client (the pre-pool transport), to compare.
await oneHop("one-fetch", "mesher, 1 hop, fetch client", { listen: { fastPath: false }, env: { MESHER_UPSTREAM_CLIENT: "fetch" } });
for (const key of ["two", "two-untraced", "two-regular", "two-fetch"] as const) {
  if (!wanted.has(key)) continue;
  const env: Record<string, string> = key === "two-fetch" ? { MESHER_UPSTREAM_CLIENT: "fetch" } : {};
  const fastPath = key === "two" || key === "two-untraced" ? "auto" : false;
  const tracedIf = (config: Record<string, unknown>) => (key === "two-untraced" ? config : traced(config));
  const provider = await startMesher(`${key}-provider`, dir, tracedIf({
    service: { name: "app", ports: { http: Number(app.address.split(":")[1]) } },
    listen: { consumer: "127.0.0.1:0", provider: "127.0.0.1:0", admin: false, fastPath },
  }), profArgs, env);
  const consumer = await startMesher(`${key}-consumer`, dir, tracedIf({
    service: { name: "bench" },
    listen: { consumer: "127.0.0.1:0", admin: false, fastPath },
    services: { app: { endpoints: [provider.extra.provider] } },
  }), profArgs, env);
  const label = {
    two: "mesher, 2 hops",
    "two-untraced": "mesher, 2 hops, no tracing",
    "two-regular": "mesher, 2 hops, regular engine",
    "two-fetch": "mesher, 2 hops, fetch client",
  }[key];
  row(key, label, consumer.address, "app", [consumer, provider]);
}
if (wanted.has("nginx")) {
  const nginx = await startNginx(dir, [app.address]);
  row("nginx", "nginx", nginx.address, "app", [nginx]);
}
// nginx with the same 200 upstream servers as one-200 (like for like), round robin.
if (wanted.has("nginx-200")) {
  const servers = app.extra.ports!.split(" ").map((p) => `127.0.0.1:${p}`);
  const nginx = await startNginx(dir, servers, "nginx-200");
  row("nginx-200", `nginx, ${servers.length} upstream servers`, nginx.address, "app", [nginx]);
}

const cpuOf = (ps: Proc[]) => {
  for (const p of [app, ...ps]) checkAlive(p);
  return ps.reduce((s, p) => s + cpuSeconds(p.pid), 0);
};

async function wrk(r: Row, seconds: number) {
  const p = Bun.spawn(
    ["wrk", `-t${o.threads}`, `-c${o.connections}`, `-d${seconds}s`, "-H", `Host: ${r.host}`, "-s", join(ROOT, "bench/wrk-report.lua"), `http://${r.address}${o.path}`],
    { stdout: "pipe", stderr: "pipe" },
  );
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const m = /WRKJSON (\{.*\})/.exec(out);
  if (!m) throw new Error(`wrk printed no result for ${r.label}:\n${out}${err}`);
  return JSON.parse(m[1]!) as { requests: number; duration_us: number; p50: number; p99: number; errors: number; non2xx: number };
}

async function loadgen(r: Row, seconds: number) {
  const p = Bun.spawn(
    ["bun", join(ROOT, "bench/loadgen.ts"), "--address", r.address, "--host", r.host, "--rate", String(rate), "--duration", String(seconds), "--path", o.path],
    { stdout: "pipe", stderr: "pipe" },
  );
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const m = /LOADGEN (\{.*\})/.exec(out);
  if (!m) throw new Error(`loadgen printed no result for ${r.label}:\n${out}${err}`);
  return JSON.parse(m[1]!) as { done: number; rate: number; p50: number; p99: number; errors: number };
}

const log = (s: string) => process.stderr.write(s);
if (o.soak) {
  await soak(rows[0]!, Number(o.soak));
  process.exit(0);
}
// The memory target is "under that load", the fixed rate: each mesher's peak RSS after
// `memory` s at `rate` req/s from its start, before any closed-loop run (whose peak is also
// shown). A minute, because RSS keeps growing for that long: with tracing over OTLP/gRPC, 82 MB
// after 5 s, 89 after 60, 91-93 after 120 (bench/NOTES.md, change 20).
const rssAtRate = new Map<number, number>();
if (rate > 0) {
  for (const r of rows) {
    if (r.key.startsWith("nginx") || !r.proxies.length) continue;
    log(`memory: ${memory} s at ${rate} req/s ${r.label}...\n`);
    await loadgen(r, memory);
    for (const p of r.proxies) rssAtRate.set(p.pid, peakRssMB(p.pid));
  }
}
if (warmup > 0) {
  log(`warming up (${warmup} s per row)...\n`);
  for (const r of rows) await wrk(r, warmup);
}
for (let round = 0; round < rounds; round++) {
  // Rotate the order each round so no row always runs first (or right after another).
  const order = rows.map((_, i) => rows[(i + round) % rows.length]!);
  for (const r of order) {
    log(`round ${round + 1}/${rounds} closed-loop ${r.label}...\n`);
    const c0 = cpuOf(r.proxies);
    const sample = setTimeout(() => {
      r.sockets = Math.max(r.sockets, r.proxies.reduce((n, p) => n + socketCount(p.pid), 0));
    }, (duration * 1000) / 2);
    const w = await wrk(r, duration);
    clearTimeout(sample);
    const secs = w.duration_us / 1e6;
    r.closed.push({ rps: w.requests / secs, p50: w.p50 / 1000, p99: w.p99 / 1000, errors: w.errors + w.non2xx, cpu: (cpuOf(r.proxies) - c0) / secs });
  }
  if (rate > 0) {
    for (const r of order) {
      log(`round ${round + 1}/${rounds} fixed ${rate} req/s ${r.label}...\n`);
      const c0 = cpuOf(r.proxies);
      const t0 = performance.now();
      const g = await loadgen(r, fixed);
      const secs = (performance.now() - t0) / 1000;
      r.fixed.push({ rate: g.rate, p50: g.p50 / 1000, p99: g.p99 / 1000, errors: g.errors, cpu: (cpuOf(r.proxies) - c0) / secs });
    }
  }
}

/** A long run at a steady rate with aborting clients: does the mesher's memory stay flat? */
async function soak(r: Row, seconds: number): Promise<void> {
  const mesher = r.proxies[0]!;
  await wrk(r, 2);
  const cap = await wrk(r, 3);
  const soakRate = rateGiven ? rate : Math.round(cap.requests / (cap.duration_us / 1e6) / 2);
  log(`soak: ${seconds} s at ${soakRate} req/s (capacity ${Math.round(cap.requests / (cap.duration_us / 1e6))}), 5% leaving mid-response\n`);
  const samples: { t: number; rss: number; sockets: number }[] = [];
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(require("node:fs").readFileSync(`/proc/${mesher.pid}/status`, "utf8"))![1]) / 1024;
  const t0 = performance.now();
  const every = Math.max(1, seconds / 20) * 1000;
  const sampler = setInterval(() => samples.push({ t: (performance.now() - t0) / 1000, rss: rss(), sockets: socketCount(mesher.pid) }), every);
  const p = Bun.spawn(
    ["bun", join(ROOT, "bench/loadgen.ts"), "--address", r.address, "--host", r.host, "--rate", String(soakRate), "--duration", String(seconds), "--abort", "5", "--abort-path", "/stream", "--connections", "256"],
    { stdout: "pipe", stderr: "pipe" },
  );
  const out = await new Response(p.stdout).text();
  clearInterval(sampler);
  checkAlive(mesher);
  console.log(`\nsoak ${new Date().toISOString()}: ${r.label}, ${seconds} s at ${soakRate} req/s, 5% of requests abandoned mid-response`);
  console.log(out.trim());
  console.log(`\n| t s | RSS MB | sockets |\n| --- | --- | --- |`);
  for (const x of samples) console.log(`| ${x.t.toFixed(0)} | ${x.rss.toFixed(1)} | ${x.sockets} |`);
  const settled = samples[Math.floor(samples.length / 4)];
  const last = samples[samples.length - 1];
  if (settled && last) console.log(`\nRSS from 1/4 of the run to the end: ${settled.rss.toFixed(1)} -> ${last.rss.toFixed(1)} MB (peak ${peakRssMB(mesher.pid).toFixed(1)})`);
}

function spansReceived(): number {
  try {
    return Number(readFileSync(spansFile, "utf8"));
  } catch {
    return 0;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};
const med = <T>(xs: T[], f: (x: T) => number) => median(xs.map(f));
const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "-");
const byKey = new Map(rows.map((r) => [r.key, r]));
const rpsOf = (k: string) => (byKey.get(k) ? med(byKey.get(k)!.closed, (x) => x.rps) : NaN);
const direct = rpsOf("direct");
const nginx = rpsOf("nginx");

const table = (head: string[], body: string[][]) => {
  const out = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
  for (const b of body) out.push(`| ${b.join(" | ")} |`);
  return out.join("\n");
};

console.log(`\nmesher bench ${new Date().toISOString()}  bun ${Bun.version}  ${navigator.hardwareConcurrency} cores shared by wrk, proxy and app`);
console.log(`proxy sockets: open sockets of the proxy process(es) halfway through the run (downstream + upstream + listeners)`);
console.log(
  collector
    ? `tracing: the mesher rows (but "no tracing" ones) sample ${sampler * 100}% of new traces, exported over OTLP/gRPC (the OTLP/HTTP row over OTLP/HTTP; bench/collector.ts received ${spansReceived()} spans)`
    : "tracing: off (--sampler 0)",
);
console.log(`closed loop: wrk -t${o.threads} -c${o.connections} ${o.path}, ${duration} s x ${rounds} interleaved rounds (median), after ${warmup} s warm-up\n`);
console.log(
  table(
    ["path", "req/s", "p50 ms", "p99 ms", "x direct", "x nginx", "proxy CPU (cores)", "proxy sockets", "errors"],
    rows.map((r) => {
      const rps = med(r.closed, (x) => x.rps);
      return [
        r.label,
        fmt(rps, 0),
        fmt(med(r.closed, (x) => x.p50)),
        fmt(med(r.closed, (x) => x.p99)),
        fmt(rps / direct),
        fmt(rps / nginx),
        r.proxies.length ? fmt(med(r.closed, (x) => x.cpu)) : "-",
        r.proxies.length ? String(r.sockets) : "-",
        String(r.closed.reduce((s, x) => s + x.errors, 0)),
      ];
    }),
  ),
);
if (rate > 0) {
  const d = byKey.get("direct");
  const dp50 = d ? med(d.fixed, (x) => x.p50) : NaN;
  const dp99 = d ? med(d.fixed, (x) => x.p99) : NaN;
  console.log(`\nfixed rate: ${rate} req/s open-loop (bench/loadgen.ts), ${fixed} s x ${rounds} rounds (median)\n`);
  console.log(
    table(
      ["path", "achieved req/s", "p50 ms", "p99 ms", "+p50 over direct", "+p99 over direct", "proxy CPU (% of a core)", "cores per 1k req/s", "errors"],
      rows.map((r) => {
        const rt = med(r.fixed, (x) => x.rate);
        const p50 = med(r.fixed, (x) => x.p50);
        const p99 = med(r.fixed, (x) => x.p99);
        const cpu = med(r.fixed, (x) => x.cpu);
        const proxied = r.proxies.length > 0;
        return [
          r.label,
          fmt(rt, 0),
          fmt(p50),
          fmt(p99),
          proxied ? fmt(p50 - dp50) : "-",
          proxied ? fmt(p99 - dp99) : "-",
          proxied ? fmt(cpu * 100, 0) : "-",
          proxied ? fmt((cpu / rt) * 1000, 3) : "-",
          String(r.fixed.reduce((s, x) => s + x.errors, 0)),
        ];
      }),
    ),
  );
}
const meshers = rows.flatMap((r) => (r.key.startsWith("nginx") ? [] : r.proxies));
if (meshers.length) {
  console.log(`\nmesher processes\n`);
  console.log(
    table(
      ["process", `peak RSS MB at ${rate} req/s (first ${memory} s)`, "peak RSS MB, whole run (VmHWM)", "CPU s total"],
      meshers.map((p) => [p.name, fmt(rssAtRate.get(p.pid) ?? NaN, 1), fmt(peakRssMB(p.pid), 1), fmt(cpuSeconds(p.pid), 1)]),
    ),
  );
}
process.exit(0);
