/**
 * Pacing of full garbage collections for bodies that stream through JavaScript (the node:http
 * engine, the h1 upstream client). Bun.serve and fetch move body bytes natively; here every
 * chunk is a JS object, and the collector lags behind a fast stream: a 100 MB upload plus
 * download raised a sidecar's peak RSS by 28-67 MB without pacing, about 25 MB with it
 * (Bun.gc(false), the asynchronous hint, made no difference; one GC per 100 ms was too few).
 * A full GC of a sidecar's heap takes 0.4-5 ms: at 100 MB/s that is ~1% of a core, and
 * nothing for small bodies.
 */
const GC_BYTES = 16 * 1024 * 1024;
const GC_INTERVAL_MS = 10;
let sinceGc = 0;
let lastGc = 0;

/** Counts body bytes that crossed JavaScript; collects after every GC_BYTES of them. */
export function countBodyBytes(bytes: number): void {
  sinceGc += bytes;
  if (sinceGc < GC_BYTES) return;
  const now = performance.now();
  if (now - lastGc < GC_INTERVAL_MS) return;
  sinceGc = 0;
  lastGc = now;
  Bun.gc(true);
}
