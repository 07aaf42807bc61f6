import { MeshError } from "../../pipeline/errors.ts";
import type { Ctx, Handler, HandlerFactory } from "../../pipeline/types.ts";
import { upstreamTlsByService } from "../../tls/options.ts";
import type { Endpoint } from "../../upstream/cluster.ts";
import { h1Request, poolFor, type Pool } from "../../upstream/h1/client.ts";
import { stripHopByHop } from "../../upstream/http.ts";

/** Bun's fetch options beyond the standard ones (not in bun-types 1.4.4). */
interface BunRequestInit extends RequestInit {
  /** false: pass compressed bodies through as they are. */
  decompress?: boolean;
  /** TLS to the upstream (CA, client certificate, server name). */
  tls?: object;
}

/**
 * Which upstream client carries plain-HTTP requests: mesher's own HTTP/1.1 pool (default; see
 * bench/NOTES.md for what it bought) or Bun's `fetch` (MESHER_UPSTREAM_CLIENT=fetch, for
 * comparison). TLS upstreams always go through `fetch` (its `tls` option).
 */
const USE_FETCH = process.env.MESHER_UPSTREAM_CLIENT === "fetch";

/** Each endpoint's pool, found once per endpoint object rather than by address per request. */
const poolOf = new WeakMap<Endpoint, Pool>();

/** Maps a failed fetch to a typed error. */
function upstreamError(err: unknown, address: string, signal: AbortSignal): MeshError {
  if (signal.aborted) {
    const reason = signal.reason;
    if (reason instanceof MeshError) return reason;
    return new MeshError("upstream_reset", "the downstream client went away", { cause: err });
  }
  const code = (err as { code?: string }).code;
  if (code === "ECONNREFUSED" || code === "ConnectionRefused" || code === "FailedToOpenSocket") {
    return new MeshError("upstream_connect_failure", `connection refused by ${address}`, { cause: err });
  }
  if (code === "ETIMEDOUT" || code === "Timeout") {
    return new MeshError("upstream_timeout", `${address} did not answer in time`, { cause: err });
  }
  return new MeshError("upstream_reset", `connection to ${address} failed: ${code ?? String(err)}`, {
    cause: err,
  });
}

/**
 * Sends the request to `ctx.endpoint` and sets `ctx.res`. Bodies stream both ways; compressed
 * responses pass byte-exact; the upstream call is cancelled when `ctx.signal` fires.
 */
export const transport: HandlerFactory = ({ config }): Handler => {
  const tlsOf = upstreamTlsByService(config);
  return async function transport(ctx) {
    const endpoint = ctx.endpoint;
    if (!endpoint) throw new MeshError("no_healthy_upstream", `no endpoint chosen for ${ctx.service}`);
    ctx.headers.set("host", endpoint.address);
    const tls = tlsOf.get(ctx.service)?.();
    if (ctx.upgrade) {
      ctx.attempts++;
      ctx.res = await ctx.upgrade(ctx, endpoint, tls);
      return;
    }
    ctx.attempts++;
    endpoint.active++;
    try {
      // Plain HTTP/1.1 goes through mesher's pool; TLS through fetch.
      ctx.res = USE_FETCH || tls ? await viaFetch(ctx, endpoint, tls) : await h1Request(poolOfEndpoint(endpoint), ctx);
    } finally {
      endpoint.active--;
    }
  };
};

/** The endpoint's keep-alive pool (errors from it come typed; hop-by-hop headers are gone). */
function poolOfEndpoint(endpoint: Endpoint): Pool {
  let pool = poolOf.get(endpoint);
  if (!pool) poolOf.set(endpoint, (pool = poolFor(endpoint.address, endpoint.host, endpoint.port)));
  return pool;
}

/** The request through Bun's fetch (`decompress: false`: compressed bodies pass as they are). */
async function viaFetch(ctx: Ctx, endpoint: Endpoint, tls: object | undefined): Promise<Response> {
  let upstream: Response;
  try {
    upstream = await fetch(`${tls ? "https" : "http"}://${endpoint.address}${ctx.path}`, <BunRequestInit>{
      method: ctx.method,
      headers: ctx.headers,
      body: ctx.body,
      redirect: "manual",
      decompress: false,
      signal: ctx.signal,
      duplex: "half", // required by the fetch spec for a streamed body
      tls,
    });
  } catch (err) {
    throw upstreamError(err, endpoint.address, ctx.signal);
  }
  return new Response(upstream.body, {
    status: upstream.status,
    statusText: upstream.statusText,
    headers: stripHopByHop(new Headers(upstream.headers)),
  });
}
