/**
 * Turns TLS settings (file paths) into what Bun's APIs take. Kept small and free of transport
 * details so any upstream client (fetch, node:tls, a custom pool) can reuse it.
 */
import { createSecureContext } from "node:tls";
import type { ResolvedConfig } from "../config/schema.ts";
import { watchedFile } from "./files.ts";
import type { ServerTls, UpstreamTls } from "./schema.ts";

/** The `tls` option of Bun's fetch / Bun.connect / node:tls.connect, with contents not paths. */
export interface ClientTlsOptions {
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
  rejectUnauthorized: boolean;
  /** node:tls spells it this way. */
  servername?: string;
}

/**
 * Compiles upstream TLS settings once; the returned function gives the current options
 * (file contents are kept fresh by a watcher, so reading them costs nothing per request).
 */
export function clientTls(tls: UpstreamTls): () => ClientTlsOptions {
  const ca = tls.ca ? watchedFile(tls.ca) : undefined;
  const cert = tls.cert ? watchedFile(tls.cert) : undefined;
  const key = tls.key ? watchedFile(tls.key) : undefined;
  let last: ClientTlsOptions | undefined;
  let seen: (string | undefined)[] = [];
  return () => {
    const now = [ca?.text, cert?.text, key?.text];
    if (last && now.every((x, i) => x === seen[i])) return last;
    seen = now;
    last = { rejectUnauthorized: !tls.insecure };
    if (now[0]) last.ca = now[0];
    if (now[1]) last.cert = now[1];
    if (now[2]) last.key = now[2];
    if (tls.serverName) last.serverName = last.servername = tls.serverName;
    return last;
  };
}

/** The current server-side TLS options (contents, not paths). */
export function serverTlsOptions(tls: ServerTls): { cert: string; key: string; ca?: string; requestCert: boolean; rejectUnauthorized: boolean } {
  const out: { cert: string; key: string; ca?: string; requestCert: boolean; rejectUnauthorized: boolean } = {
    cert: watchedFile(tls.cert).text,
    key: watchedFile(tls.key).text,
    requestCert: tls.requireClientCert,
    rejectUnauthorized: tls.requireClientCert,
  };
  if (tls.ca) out.ca = watchedFile(tls.ca).text;
  return out;
}

/** Files whose change should reload a server's certificate. */
export function serverTlsFiles(tls: ServerTls): string[] {
  return [tls.cert, tls.key, ...(tls.ca ? [tls.ca] : [])];
}

/** Compiled client TLS per service name, for services that set `tls`. */
export function upstreamTlsByService(config: ResolvedConfig): Map<string, () => ClientTlsOptions> {
  const out = new Map<string, () => ClientTlsOptions>();
  for (const [name, svc] of Object.entries(config.services)) if (svc.tls) out.set(name, clientTls(svc.tls));
  return out;
}

/** Throws when the current files do not make a usable server context (e.g. key and cert differ). */
export function checkServerTls(tls: ServerTls): void {
  const o = serverTlsOptions(tls);
  createSecureContext({ cert: o.cert, key: o.key, ca: o.ca });
}
