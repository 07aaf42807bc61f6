/**
 * The Bun glue of the HTTP listeners: everything else works on web-standard Request/Response.
 */
import type { Server } from "bun";
import { errorResponse, MeshError } from "../pipeline/errors.ts";
import { splitAddress } from "../upstream/cluster.ts";

export type RequestHandler = (req: Request, clientAddress: string) => Promise<Response> | Response;

export interface ServeOptions {
  /** Milliseconds; Bun takes whole seconds up to 255, 0 disables. */
  idleTimeout: number;
  maxRequestBodySize: number;
}

export function serveHttp(address: string, handler: RequestHandler, options: ServeOptions): Server<undefined> {
  const { host, port } = splitAddress(address);
  return Bun.serve({
    hostname: host,
    port,
    idleTimeout: Math.min(255, Math.ceil(options.idleTimeout / 1000)),
    maxRequestBodySize: options.maxRequestBodySize,
    async fetch(req, server) {
      const res = await handler(req, server.requestIP(req)?.address ?? "");
      // A response of unknown length may be a stream (server-sent events) that goes quiet for a
      // while: Bun's idle timer would cut it (it cut an SSE stream silent for 12 s at the 10 s
      // default), so streams are exempt.
      if (res.body && !res.headers.has("content-length")) server.timeout(req, 0);
      return res;
    },
    error(err) {
      return errorResponse(new MeshError("internal", `listener failed: ${err.message}`));
    },
  });
}

/** "host:port" a server is bound to. */
export function boundAddress(server: Server<undefined>): string {
  const host = server.hostname ?? "127.0.0.1";
  return `${host.includes(":") ? `[${host}]` : host}:${server.port}`;
}
