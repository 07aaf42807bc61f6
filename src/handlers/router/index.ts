import type { ResolvedConfig } from "../../config/schema.ts";
import { MeshError } from "../../pipeline/errors.ts";
import type { Ctx, Handler, HandlerFactory, Next, RouteDecision } from "../../pipeline/types.ts";
import type { Cluster } from "../../upstream/cluster.ts";
import { compileRules, findRule, type CompiledRule } from "./compile.ts";
import { LATEST, latestResolver } from "./latest.ts";
import { requestView } from "./match.ts";
import { fireMirrors } from "./mirror.ts";

/** Route rules of a service as configured (resolved: defaults filled in); undefined when none. */
export function routeRulesOf(config: ResolvedConfig, service: string): unknown {
  const routes = config.services[service]?.routes;
  return routes && routes.length ? routes : undefined;
}

/**
 * Picks the route of a request and resolves its cluster. The first rule of the destination
 * service that matches (by precedence) decides: the tags the endpoint must carry (smooth
 * weighted round-robin over the rule's `route`), maybe another service, the per-route
 * timeout/retry/fault later handlers read from `ctx.route`, a path rewrite, header actions
 * and mirrors. Without a matching rule the request goes to any endpoint of the service. A
 * route already set by an earlier handler is kept (as go-chassis skips its router then).
 */
export const router: HandlerFactory = ({ config, clusters }): Handler => {
  const tables = new Map<string, CompiledRule[]>();
  for (const [name, svc] of Object.entries(config.services)) {
    if (svc.routes.length) tables.set(name, compileRules(svc.routes));
  }
  const latest = latestResolver();
  const mirrorCursor = { n: 0 };

  // Not async when the service is known: only a name discovery must wait (see below).
  return function router(ctx, next) {
    let rule: CompiledRule | undefined;
    const canonical = clusters.canonicalName(ctx.service);
    if (canonical) ctx.service = canonical;
    if (!ctx.route) {
      const rules = tables.get(ctx.service);
      const found = rules && findRule(rules, requestView(ctx));
      if (found) {
        rule = found.rule;
        const dest = rule.destinations?.next();
        const service = dest?.service ?? rule.service;
        if (service) ctx.service = service;
        const decision: RouteDecision = { name: rule.name, tags: dest?.tags };
        if (rule.timeout !== undefined) decision.timeout = rule.timeout;
        if (rule.retry) decision.retry = rule.retry;
        if (rule.fault) decision.fault = rule.fault;
        ctx.route = decision;
        if (rule.rewrite) ctx.path = rule.rewrite(ctx.path, found.matched);
        rule.requestHeaders?.(ctx.headers);
      } else {
        ctx.route = { name: "default" };
      }
    }
    const cluster = clusters.get(ctx.service);
    return cluster ? routeTo(ctx, next, cluster, rule) : discovered(ctx, next, rule);
  };

  /** Names static config does not know are asked of the registry (a bounded wait, then cached). */
  async function discovered(ctx: Ctx, next: Next, rule: CompiledRule | undefined): Promise<void> {
    const cluster = await clusters.discover(ctx.service);
    if (!cluster) {
      throw new MeshError("unknown_service", `no service named "${ctx.service}" is known to this sidecar`);
    }
    return routeTo(ctx, next, cluster, rule);
  }

  function routeTo(ctx: Ctx, next: Next, cluster: Cluster, rule: CompiledRule | undefined): Promise<void> {
    ctx.cluster = cluster;
    const route = ctx.route!;
    const tags = route.tags;
    if (tags?.version === LATEST) {
      const version = latest(cluster);
      if (version !== LATEST) route.tags = { ...tags, version };
    }
    if (rule?.mirrors.length && ctx.protocol !== "grpc") fireMirrors(ctx, rule.mirrors, clusters, mirrorCursor);
    const responseHeaders = rule?.responseHeaders;
    if (!responseHeaders) return next();
    return next().then(() => {
      if (ctx.res) responseHeaders(ctx.res.headers);
    });
  }
};
