/**
 * Shared pieces of the end-to-end tests: real apps, real sidecars, real clients, all on
 * 127.0.0.1 with ports from the OS. Nothing here sleeps and hopes: readiness is waited for.
 */
import type { Server, Socket, Subprocess, TCPSocketListener } from "bun";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { resolveConfig } from "../src/config/resolve.ts";
import type { UserConfig } from "../src/config/schema.ts";
import { startMesher, type Mesher } from "../src/server.ts";

export const ROOT = resolve(import.meta.dir, "..");
export const CLI = join(ROOT, "src/cli.ts");

/** A Bun app on a free port (or on `port`, to bring an app back where it was). */
export function startApp(fetch: (req: Request, server: Server<undefined>) => Response | Promise<Response>, port = 0): Server<undefined> {
  return Bun.serve({ hostname: "127.0.0.1", port, idleTimeout: 0, fetch });
}

/** An app that answers JSON describing what it received (method, path, headers, body size). */
export function startEchoApp(name = "app"): Server<undefined> {
  return startApp(async (req) => {
    const body = req.body ? new Uint8Array(await req.arrayBuffer()) : new Uint8Array();
    const url = new URL(req.url);
    return Response.json({
      app: name,
      method: req.method,
      path: url.pathname + url.search,
      headers: Object.fromEntries(req.headers),
      bodyBytes: body.byteLength,
    });
  });
}

/** A mesher in this process, with every listener on a free port unless given. */
export function startSidecar(config: UserConfig): Mesher {
  return startMesher(
    resolveConfig({
      ...config,
      listen: {
        consumer: "127.0.0.1:0",
        admin: "127.0.0.1:0",
        ...config.listen,
      },
    }),
  );
}

/** Two sidecars between a caller and `app`: caller -> A (consumer) -> B (provider) -> app. */
export function twoSidecars(appPort: number, extra: { a?: Partial<UserConfig>; b?: Partial<UserConfig> } = {}) {
  const b = startSidecar({
    service: { name: "promotion", version: "1.0.0", ports: { http: appPort } },
    listen: { provider: "127.0.0.1:0" },
    ...extra.b,
  });
  const a = startSidecar({
    service: { name: "shop", version: "1.0.0", app: "demo" },
    services: { promotion: { endpoints: [b.addresses.provider!] } },
    ...extra.a,
  });
  return { a, b, proxy: `http://${a.addresses.consumer}`, stop: () => Promise.all([a.stop(), b.stop()]) };
}

/** fetch through a sidecar's consumer listener, as an app with HTTP_PROXY would. */
export function viaProxy(proxy: string, url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, proxy } as RequestInit);
}

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion. */
export async function run(cmd: string[], opts: { env?: Record<string, string>; cwd?: string; stdin?: string } = {}): Promise<Ran> {
  const p = Bun.spawn(cmd, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    stdout: "pipe",
    stderr: "pipe",
    stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

/** curl with arguments; returns status code and body (curl prints the code last). */
export async function curl(args: string[]): Promise<{ status: number; body: string; stderr: string }> {
  const r = await run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", ...args]);
  const i = r.stdout.lastIndexOf("\n");
  return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i), stderr: r.stderr };
}

/** Reads lines from a stream until one matches; resolves with the match. */
export async function waitForLine(stream: ReadableStream<Uint8Array>, re: RegExp, seen: string[] = []): Promise<RegExpExecArray> {
  const decoder = new TextDecoder();
  let buf = "";
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended before ${re}; saw:\n${seen.join("\n")}`);
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        seen.push(line);
        const m = re.exec(line);
        if (m) return m;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

export interface Spawned {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  consumer: string;
  provider?: string;
  admin?: string;
  /** Everything printed so far, line by line (stdout up to the listening line; all of stderr). */
  lines: string[];
}

/** Starts the mesher CLI and waits for its "listening" line. */
export async function spawnMesher(args: string[], env: Record<string, string> = {}): Promise<Spawned> {
  const proc = Bun.spawn(["bun", CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const lines: string[] = [];
  // stderr lines land in `lines` as they come (reload errors, warnings), and whole in `stderr`.
  const stderr = (async () => {
    let all = "";
    let buf = "";
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) {
      const text = decoder.decode(chunk, { stream: true });
      all += text;
      buf += text;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    }
    return all;
  })();
  try {
    const m = await waitForLine(proc.stdout, /listening consumer=(\S+)(?: provider=(\S+))?(?: admin=(\S+))?/, lines);
    return { proc, consumer: m[1]!, provider: m[2], admin: m[3], lines };
  } catch (err) {
    proc.kill();
    throw new Error(`${(err as Error).message}\nstderr:\n${await stderr}`);
  }
}

/** Writes files into a new temporary directory; returns its path. */
export function tempDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "mesher-test-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** Starts Python's http.server (a non-Bun app) in `dir`; resolves with its port. */
export async function startPythonServer(dir: string): Promise<{ port: number; stop: () => void }> {
  const proc = Bun.spawn(["python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"], {
    cwd: dir,
    stdout: "pipe",
    stderr: "ignore",
    stdin: "ignore",
  });
  const m = await waitForLine(proc.stdout, /port (\d+)/);
  return { port: Number(m[1]), stop: () => proc.kill() };
}

/**
 * A port nothing listens on: connections are refused. Taken below Linux's ephemeral range
 * (32768-60999), which the OS hands out for `port: 0` and outgoing connections: a port from that
 * range, bound and closed, could be given to another test's server in the meantime (seen: an
 * "unreachable" endpoint answering 200). Checked free by binding it; 30000-30999 is left to the
 * default config's ports.
 */
export function closedPort(): number {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    try {
      Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } }).stop(true);
      return port;
    } catch {
      // in use: another one
    }
  }
}

/**
 * A raw TCP server speaking just enough HTTP/1.1 to inject faults: `onRequest(socket, n, head)`
 * is called per request head received (`n` counts per connection; the head without its blank
 * line; bodies are not read).
 */
export function rawHttpServer(onRequest: (s: Socket<{ n: number; buf: string }>, n: number, head: string) => void, onClose?: () => void): TCPSocketListener<{ n: number; buf: string }> {
  return Bun.listen<{ n: number; buf: string }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.data = { n: 0, buf: "" };
      },
      data(s, chunk) {
        s.data.buf += chunk.toString("latin1");
        let end: number;
        while ((end = s.data.buf.indexOf("\r\n\r\n")) >= 0) {
          const head = s.data.buf.slice(0, end);
          s.data.buf = s.data.buf.slice(end + 4);
          onRequest(s, ++s.data.n, head);
        }
      },
      close() {
        onClose?.();
      },
    },
  });
}
