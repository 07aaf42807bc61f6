/**
 * Edge mode (API gateway), as Mesher's gateway.go: an external request runs the provider chain
 * first (auth, rate limit: everything but its terminal transport), then the ingress rules pick
 * the service and path (first match wins), then the consumer chain carries it to the service
 * (routing, breaker, balancing, transport). No matching rule is a 404 `no_route` (Mesher: 500).
 */
import type { ResolvedConfig } from "../config/schema.ts";
import { DEFAULT_CHAINS } from "../handlers/index.ts";
import { IDENTITY_HEADER, instantiate, type Pipeline } from "../pipeline/build.ts";
import { compose } from "../pipeline/compose.ts";
import { MeshError } from "../pipeline/errors.ts";
import type { Ctx, Handler } from "../pipeline/types.ts";
import type { ClusterManager } from "../upstream/clusters.ts";
import { originForm, setForwarded, stripHopByHop } from "../upstream/http.ts";
import { newContext, runChain, VIA_HEADER } from "./handle.ts";
import { compileIngress, type IngressTable } from "./ingress.ts";
import type { Runtime } from "./runtime.ts";

/** Handlers that end a chain by sending upstream; the provider half in edge mode drops them. */
const TERMINAL = new Set(["transport"]);

/** The ingress step between the two halves: picks service and path, or throws no_route. */
function ingressStep(table: IngressTable, identity: string, self: ResolvedConfig["service"]): Handler {
  const source = { name: self.name, version: self.version, app: self.app, tags: self.tags };
  return async function ingress(ctx, next) {
    const m = table.match(ctx.req.headers.get("host"), ctx.path, ctx.headers);
    if (!m) {
      throw new MeshError("no_route", `no ingress rule matches ${ctx.method} ${ctx.path}`);
    }
    ctx.service = m.service;
    ctx.path = m.path;
    ctx.source = source;
    ctx.headers.set(IDENTITY_HEADER, identity);
    if (m.port) {
      ctx.port = m.port;
      ctx.headers.set("x-forwarded-port", m.port);
    } else {
      ctx.headers.delete("x-forwarded-port");
    }
    ctx.state.ingressRule = m.rule;
    await next();
  };
}

/** The edge chain of one pipeline: provider half, ingress, consumer half. */
export function buildEdgeChain(pipeline: Pipeline, clusters: ClusterManager): (ctx: Ctx) => Promise<void> {
  const config = pipeline.config;
  const provider = (config.chains.provider ?? DEFAULT_CHAINS.provider).filter(
    (e) => typeof e !== "string" || !TERMINAL.has(e),
  );
  const consumer = config.chains.consumer ?? DEFAULT_CHAINS.consumer;
  return compose([
    ...instantiate(config, clusters, "provider", provider, pipeline.extras),
    ingressStep(compileIngress(config.ingress), pipeline.identity, config.service),
    ...instantiate(config, clusters, "consumer", consumer, pipeline.extras),
  ]);
}

export function edgeHandler(rt: Runtime, clusters: ClusterManager): (req: Request, clientAddress: string) => Promise<Response> {
  const mark = `${rt.id}/edge`;
  // Compiled once per pipeline (config load or reload), not per request.
  const chains = new WeakMap<Pipeline, (ctx: Ctx) => Promise<void>>();
  const chainOf = (p: Pipeline) => {
    let chain = chains.get(p);
    if (!chain) chains.set(p, (chain = buildEdgeChain(p, clusters)));
    return chain;
  };
  chainOf(rt.pipeline);
  return async function edge(req, clientAddress) {
    const pipeline = rt.pipeline;
    const headers = stripHopByHop(new Headers(req.headers));
    // External callers may not claim an identity inside the mesh.
    headers.delete(IDENTITY_HEADER);
    setForwarded(headers, clientAddress, req.headers.get("host"), "http");
    const via = req.headers.get(VIA_HEADER);
    headers.set(VIA_HEADER, via ? `${via}, ${mark}` : mark);
    if (!headers.has("accept-encoding")) headers.set("accept-encoding", "identity");
    const ctx = newContext(req, "edge", clientAddress, headers, originForm(req.url), pipeline.config.service.name);
    return runChain(rt, ctx, chainOf(pipeline));
  };
}
