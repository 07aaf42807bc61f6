/**
 * A real etcd (Debian's etcd-server, /usr/bin/etcd) for tests: free loopback ports for the
 * client and peer URLs, a temporary data dir, ready when /health says so. It can be stopped
 * and started again on the same ports and data (an etcd restart).
 */
import type { Subprocess } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A port the OS says is free now (bound to 0, read, closed). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface EtcdServer {
  /** "http://127.0.0.1:port" */
  readonly url: string;
  start(): Promise<void>;
  /** Stops it (SIGKILL: as a crash would). */
  stop(): Promise<void>;
  /** Stops it and removes its data; start() then brings up an empty etcd on the same ports. */
  wipe(): Promise<void>;
  /** Stops it and removes its data. */
  destroy(): Promise<void>;
}

export async function startEtcd(): Promise<EtcdServer> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), "mesher-etcd-"));
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  let proc: Subprocess | undefined;
  let log = "";

  const server: EtcdServer = {
    url,
    async start() {
      proc = Bun.spawn(
        [
          "etcd",
          "--name", "test",
          "--data-dir", join(dir, "data"),
          "--listen-client-urls", url,
          "--advertise-client-urls", url,
          "--listen-peer-urls", peer,
          "--initial-advertise-peer-urls", peer,
          "--initial-cluster", `test=${peer}`,
          "--log-level", "error",
        ],
        { stdout: "ignore", stderr: "pipe", stdin: "ignore" },
      );
      void new Response(proc.stderr as ReadableStream).text().then((t) => (log += t));
      const deadline = Date.now() + 20_000;
      for (;;) {
        if (proc.exitCode !== null) throw new Error(`etcd exited ${proc.exitCode}: ${log}`);
        const ok = await fetch(`${url}/health`).then((r) => r.json() as Promise<{ health?: string }>, () => undefined);
        if (ok?.health === "true") return;
        if (Date.now() > deadline) throw new Error(`etcd not healthy within 20s: ${log}`);
        await Bun.sleep(50); // bounded readiness poll
      }
    },
    async stop() {
      if (!proc) return;
      proc.kill("SIGKILL");
      await proc.exited;
      proc = undefined;
    },
    async wipe() {
      await server.stop();
      rmSync(join(dir, "data"), { recursive: true, force: true });
    },
    async destroy() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

/** Polls `check` until it returns a truthy value; throws with `what` after `ms`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, ms = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await Bun.sleep(25); // bounded condition poll
  }
}
