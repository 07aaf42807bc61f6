/**
 * Process plumbing of the benchmark: start the app, meshers and nginx on free ports, wait for
 * them, read their CPU and memory from /proc.
 */
import type { Subprocess } from "bun";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "..");

export interface Proc {
  name: string;
  proc: Subprocess<"ignore", "pipe", any>;
  pid: number;
  /** "host:port" it serves on. */
  address: string;
  /** Other addresses it printed (provider, admin). */
  extra: Record<string, string>;
}

const running: Proc[] = [];
export function stopAll(): void {
  for (const p of running.splice(0)) p.proc.kill("SIGKILL");
}

/** Reads stdout until `re` matches a line (bounded by `ms`). */
async function waitLine(p: Subprocess<"ignore", "pipe", any>, re: RegExp, ms = 15000): Promise<RegExpExecArray> {
  const reader = p.stdout.getReader();
  const dec = new TextDecoder();
  let buf = "";
  const timer = setTimeout(() => p.kill(), ms);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`exited before printing ${re}: ${buf}`);
      buf += dec.decode(value, { stream: true });
      const m = re.exec(buf);
      if (m) return m;
    }
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
    // Keep draining so a chatty child never blocks on a full pipe.
    void p.stdout.pipeTo(new WritableStream()).catch(() => {});
  }
}

/** Where children's stderr goes (a file: nobody reads it during the run, and a pipe would fill). */
export let stderrDir = "";
export function setStderrDir(dir: string): void {
  stderrDir = dir;
}

function spawn(cmd: string[], env: Record<string, string> = {}, name = "proc"): Subprocess<"ignore", "pipe", any> {
  const stderr = stderrDir ? Bun.file(join(stderrDir, `${name}.stderr`)) : "inherit";
  return Bun.spawn(cmd, { cwd: ROOT, env: { ...process.env, ...env }, stdin: "ignore", stdout: "pipe", stderr }) as Subprocess<"ignore", "pipe", any>;
}

/** What a child printed on stderr (for reports when it died). */
export function stderrOf(name: string): string {
  try {
    return readFileSync(join(stderrDir, `${name}.stderr`), "utf8");
  } catch {
    return "";
  }
}

/** Throws, with its stderr, if a process has exited. */
export function checkAlive(p: Proc): void {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) {
    throw new Error(`${p.name} exited (${p.proc.exitCode ?? p.proc.signalCode}) during the run:\n${stderrOf(p.name).slice(-3000)}`);
  }
}

/** Starts bench/app.ts; `extraPorts` more ports in the same process (one service's endpoints). */
export async function startApp(extraPorts = 0): Promise<Proc> {
  const proc = spawn(["bun", join(ROOT, "bench/app.ts")], { EXTRA_PORTS: String(extraPorts) }, "app");
  const m = await waitLine(proc, /ports ([\d ]+)\n/);
  const ports = m[1]!.trim().split(" ");
  const p = { name: "app", proc, pid: proc.pid, address: `127.0.0.1:${ports[0]}`, extra: { ports: ports.join(" ") } };
  running.push(p);
  return p;
}

/**
 * Starts bench/collector.ts: an OTLP/gRPC receiver (`address`) and an OTLP/HTTP one
 * (`extra.http`); it counts spans into `spansFile`.
 */
export async function startCollector(spansFile: string): Promise<Proc> {
  const proc = spawn(["bun", join(ROOT, "bench/collector.ts")], { SPANS_FILE: spansFile }, "collector");
  const m = await waitLine(proc, /collector (\S+) http=(\S+)\n/);
  const p = { name: "collector", proc, pid: proc.pid, address: m[1]!, extra: { http: m[2]! } };
  running.push(p);
  return p;
}

/** Starts `bun src/cli.ts` with a JSON config written to `dir`. */
export async function startMesher(name: string, dir: string, config: unknown, args: string[] = [], env: Record<string, string> = {}): Promise<Proc> {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(config));
  const proc = spawn(["bun", ...args, join(ROOT, "src/cli.ts"), "--config", file], env, name);
  const m = await waitLine(proc, /listening consumer=(\S+)(?: provider=(\S+))?(?: admin=(\S+))?/);
  const p: Proc = { name, proc, pid: proc.pid, address: m[1]!, extra: { provider: m[2] ?? "", admin: m[3] ?? "" } };
  running.push(p);
  return p;
}

async function freePort(): Promise<number> {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

async function waitConnect(address: string, ms = 10000): Promise<void> {
  const [hostname, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
  const end = Date.now() + ms;
  for (;;) {
    try {
      const s = await Bun.connect({ hostname, port, socket: { data() {} } });
      s.end();
      return;
    } catch (err) {
      if (Date.now() > end) throw err;
      await Bun.sleep(20);
    }
  }
}

/**
 * nginx (one worker, no master, in the foreground, unprivileged paths), proxying to
 * `upstreams` (round robin) with keep-alive. Its idle cache holds 64 connections, or two per
 * server when there are more (the cache is per worker, shared by all servers: a smaller one
 * would close connections round robin needs next).
 */
export async function startNginx(dir: string, upstreams: string[], name = "nginx"): Promise<Proc> {
  const ndir = join(dir, name);
  mkdirSync(ndir, { recursive: true });
  const port = await freePort();
  const conf = `daemon off;
master_process off;
worker_processes 1;
pid ${ndir}/nginx.pid;
error_log ${ndir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${ndir}/body;
  proxy_temp_path ${ndir}/proxy;
  fastcgi_temp_path ${ndir}/fastcgi;
  uwsgi_temp_path ${ndir}/uwsgi;
  scgi_temp_path ${ndir}/scgi;
  upstream app { ${upstreams.map((u) => `server ${u}; `).join("")}keepalive ${Math.max(64, 2 * upstreams.length)}; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
  writeFileSync(join(ndir, "nginx.conf"), conf);
  const nginxBin = Bun.which("nginx", { PATH: `${process.env.PATH}:/usr/sbin` }) ?? "/usr/sbin/nginx";
  const proc = spawn([nginxBin, "-p", ndir, "-e", join(ndir, "error.log"), "-c", join(ndir, "nginx.conf")], {}, name);
  const p: Proc = { name, proc, pid: proc.pid, address: `127.0.0.1:${port}`, extra: {} };
  running.push(p);
  try {
    await waitConnect(p.address);
  } catch {
    throw new Error(`nginx did not start: ${readFileSync(join(ndir, "error.log"), "utf8")}`);
  }
  return p;
}

const CLK_TCK = 100; // Linux's USER_HZ on every architecture Debian ships

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** Peak resident set size (VmHWM) in MB. */
export function peakRssMB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Open TCP sockets of a process (from its file descriptors). */
export function socketCount(pid: number): number {
  const r = Bun.spawnSync(["find", `/proc/${pid}/fd`, "-lname", "socket:*"]);
  return r.stdout.toString().split("\n").filter(Boolean).length;
}
