/**
 * Traffic mirroring (Istio `mirror`, Envoy `request_mirror_policies`): a fire-and-forget
 * copy of the request to another service or subset. The copy is never awaited, its response
 * is drained and ignored, and its failures are swallowed, so it can neither delay nor fail
 * the request it copies. As in Envoy, the copy's Host is the service name with "-shadow".
 *
 * Bodies: a request without a body, or whose body is already buffered, is copied as is; a
 * streamed body is copied only when its Content-Length is at most MIRROR_MAX_BODY (the
 * stream is teed; the branch the mirror does not read is buffered, so the cap bounds that
 * memory). Other requests with bodies are not mirrored.
 */
import type { Ctx } from "../../pipeline/types.ts";
import { hasTags, isAvailable, type Endpoint } from "../../upstream/cluster.ts";
import type { ClusterManager } from "../../upstream/clusters.ts";
import type { CompiledMirror } from "./compile.ts";

export const MIRROR_MAX_BODY = 64 * 1024;
/** A mirror that does not answer within this is abandoned. */
export const MIRROR_TIMEOUT = 10_000;

type Body = Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> | null;

/** Takes a copy of ctx.body for mirrors (teeing a small stream); undefined: do not mirror. */
function bodyCopies(ctx: Ctx, n: number): Body[] | undefined {
  const body = ctx.body;
  if (body === null || body instanceof Uint8Array) return Array.from({ length: n }, () => body);
  const length = Number(ctx.headers.get("content-length") ?? NaN);
  if (!(length <= MIRROR_MAX_BODY)) return undefined;
  const out: Body[] = [];
  let rest: ReadableStream<Uint8Array> = body;
  for (let i = 0; i < n; i++) {
    const [a, b] = rest.tee();
    out.push(b);
    rest = a;
  }
  ctx.body = rest;
  return out;
}

/** Sends the copies that `mirrors` ask for this request; returns at once. */
export function fireMirrors(ctx: Ctx, mirrors: readonly CompiledMirror[], clusters: ClusterManager, cursor: { n: number }): void {
  const chosen: Array<{ service: string; endpoint: Endpoint }> = [];
  const now = Date.now();
  for (const m of mirrors) {
    if (!m.take()) continue;
    const service = m.service ?? ctx.service;
    const cluster = clusters.get(service);
    if (!cluster) continue;
    const candidates = cluster.endpoints.filter((e) => isAvailable(e, now) && hasTags(e, m.tags));
    if (candidates.length === 0) continue;
    chosen.push({ service, endpoint: candidates[cursor.n++ % candidates.length]! });
  }
  if (chosen.length === 0) return;
  const bodies = bodyCopies(ctx, chosen.length);
  if (!bodies) return;
  chosen.forEach(({ service, endpoint }, i) => {
    const headers = new Headers(ctx.headers);
    headers.set("host", `${service}-shadow`);
    const body = bodies[i]!;
    fetch(`http://${endpoint.address}${ctx.path}`, {
      method: ctx.method,
      headers,
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(MIRROR_TIMEOUT),
      duplex: "half",
    } as RequestInit).then(
      (res) => res.body?.cancel().catch(() => {}),
      () => {
        if (body instanceof ReadableStream) body.cancel().catch(() => {});
      },
    );
  });
}
