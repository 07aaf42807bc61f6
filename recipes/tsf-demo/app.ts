/**
 * A TSF-demo-style app (seed 003): it answers, and when it has a next service it calls it
 * through its own sidecar (HTTP_PROXY), copying the inbound trace headers onto that call,
 * which is all an app does to join the mesh's traces.
 *
 *   SERVICE=shop PORT=8090 NEXT=promotion HTTP_PROXY=http://127.0.0.1:30201 bun recipes/tsf-demo/app.ts
 */

/** The nine headers the TSF demo's apps copy (x-request-id, B3, Envoy's). */
export const TSF_HEADERS = [
  "x-request-id",
  "x-trace-service",
  "x-ot-span-context",
  "x-client-trace-id",
  "x-b3-traceid",
  "x-b3-spanid",
  "x-b3-parentspanid",
  "x-b3-sampled",
  "x-b3-flags",
];
/** Those plus W3C and SkyWalking: what an app should copy to join any of mesher's formats. */
export const ALL_TRACE_HEADERS = [...TSF_HEADERS, "traceparent", "tracestate", "b3", "sw8", "sw8-correlation", "sw8-x"];

export interface TsfAppOptions {
  service: string;
  port?: number;
  /** The service this one calls, if any. */
  next?: string;
  /** This app's sidecar consumer listener, as "http://host:port"; read per call. */
  proxy?: () => string | undefined;
  /** Headers copied from the inbound request onto the outbound call. */
  copy?: readonly string[];
}

export function startTsfApp(o: TsfAppOptions) {
  const copy = o.copy ?? TSF_HEADERS;
  return Bun.serve({
    hostname: "127.0.0.1",
    port: o.port ?? 0,
    idleTimeout: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (!o.next) {
        return Response.json({ service: o.service, path, result: { promotions: [{ id: 1, discount: 0.1 }] } });
      }
      const headers = new Headers();
      for (const h of copy) {
        const v = req.headers.get(h);
        if (v !== null) headers.set(h, v);
      }
      try {
        const res = await fetch(`http://${o.next}/api/v6/${o.next}/items`, { headers, proxy: o.proxy?.() } as RequestInit);
        const body = await res.text();
        if (!res.ok) return Response.json({ exception: `Error invoke ${o.next}: ${res.status} ${body}` }, { status: 500 });
        return Response.json({ service: o.service, path, result: JSON.parse(body) });
      } catch (err) {
        return Response.json({ exception: `Error invoke ${o.next}: ${(err as Error).message}` }, { status: 500 });
      }
    },
  });
}

if (import.meta.main) {
  const service = process.env.SERVICE ?? "promotion";
  const server = startTsfApp({
    service,
    port: Number(process.env.PORT ?? 0),
    next: process.env.NEXT || undefined,
    proxy: () => process.env.HTTP_PROXY,
  });
  console.log(`${service} app listening on ${server.hostname}:${server.port}`);
}
