/**
 * Reacting to a server's certificate files changing: node:http2 swaps its secure context in
 * place (`setSecureContext`, which Bun implements); Bun.serve and node:https cannot, so
 * serveHttp restarts its listener on the same port instead (listeners/serve.ts).
 */
import { onFilesChange } from "./files.ts";
import { checkServerTls, serverTlsFiles, serverTlsOptions } from "./options.ts";
import type { ServerTls } from "./schema.ts";

/** Changes to certificate files this close together are one change. */
const RELOAD_SETTLE_MS = 50;

/**
 * Calls `apply` with the new options once the files settle and make a usable pair (a cert
 * manager writes key and cert one after the other: a half-written pair is never applied, the
 * old one keeps serving). Returns the unsubscribe function.
 */
export function onServerTlsChange(
  tls: ServerTls,
  label: string,
  apply: (options: ReturnType<typeof serverTlsOptions>) => void,
): () => void {
  let timer: Timer | undefined;
  const swap = () => {
    try {
      checkServerTls(tls);
      apply(serverTlsOptions(tls));
    } catch (err) {
      console.error(`mesher: not reloading the certificate of ${label} yet: ${(err as Error).message}`);
    }
  };
  const unwatch = onFilesChange(serverTlsFiles(tls), () => {
    clearTimeout(timer);
    timer = setTimeout(swap, RELOAD_SETTLE_MS);
  });
  return () => {
    clearTimeout(timer);
    unwatch();
  };
}
