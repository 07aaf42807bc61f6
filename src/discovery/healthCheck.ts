/**
 * Local health checks of the app behind a sidecar, as Mesher's `localHealthCheck` without its
 * defects (PEERS.md 2.11): the first check runs at start, not one interval later; an HTTP check
 * without `match` requires a 2xx (Mesher accepts any status); an app that cannot be reached or
 * does not answer in time is unhealthy (Mesher treats a client error as healthy).
 */
import { connect } from "node:net";
import type { HealthCheckConfig } from "./schema.ts";

export interface CheckResult {
  ok: boolean;
  /** Why it failed, for logs and the admin API. */
  reason?: string;
}

/** A check with its port settled and its regex compiled (once, at config time). */
export interface CompiledCheck {
  protocol: "http" | "tcp";
  port: number;
  path: string;
  interval: number;
  timeout: number;
  status?: number;
  body?: RegExp;
}

export function compileCheck(hc: HealthCheckConfig, defaultPort: number | undefined): CompiledCheck {
  const port = hc.port ?? defaultPort;
  if (port === undefined) throw new Error("healthCheck needs a port (or service.ports.http)");
  return {
    protocol: hc.protocol,
    port,
    path: hc.path,
    interval: hc.interval,
    timeout: hc.timeout,
    status: hc.match?.status,
    body: hc.match?.body === undefined ? undefined : new RegExp(hc.match.body),
  };
}

function tcpCheck(port: number, timeout: number): Promise<CheckResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    const done = (r: CheckResult) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, reason: `tcp 127.0.0.1:${port}: no connection within ${timeout}ms` }), timeout);
    socket.once("connect", () => done({ ok: true }));
    socket.once("error", (err) => done({ ok: false, reason: `tcp 127.0.0.1:${port}: ${err.message}` }));
  });
}

async function httpCheck(c: CompiledCheck): Promise<CheckResult> {
  const url = `http://127.0.0.1:${c.port}${c.path}`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(c.timeout), redirect: "manual" });
    const statusOk = c.status === undefined ? res.status >= 200 && res.status < 300 : res.status === c.status;
    if (!statusOk) {
      await res.body?.cancel();
      return { ok: false, reason: `GET ${url}: status ${res.status}` };
    }
    if (c.body) {
      const text = await res.text();
      if (!c.body.test(text)) return { ok: false, reason: `GET ${url}: body does not match ${c.body}` };
    } else {
      await res.body?.cancel();
    }
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `GET ${url}: ${(err as Error).message}` };
  }
}

/** Runs one check once. */
export function runCheck(c: CompiledCheck): Promise<CheckResult> {
  return c.protocol === "tcp" ? tcpCheck(c.port, c.timeout) : httpCheck(c);
}

/** Runs all checks once; healthy when every one passes. */
export async function runChecks(checks: readonly CompiledCheck[]): Promise<CheckResult> {
  const results = await Promise.all(checks.map(runCheck));
  const failed = results.find((r) => !r.ok);
  return failed ?? { ok: true };
}

/**
 * Checks an app now and then every interval (the shortest of its checks), and calls
 * `onResult` with every result (the caller acts on changes).
 */
export function watchHealth(checks: readonly CompiledCheck[], onResult: (r: CheckResult) => void | Promise<void>): () => void {
  const interval = Math.min(...checks.map((c) => c.interval));
  let stopped = false;
  let timer: Timer | undefined;
  const tick = async () => {
    const r = await runChecks(checks);
    if (stopped) return;
    try {
      await onResult(r);
    } catch (err) {
      console.error(`mesher: health result handling failed: ${(err as Error).message}`);
    }
    if (!stopped) timer = setTimeout(tick, interval);
  };
  void tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
