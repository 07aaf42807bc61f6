import type { Handler, HandlerFactory } from "../../pipeline/types.ts";
import { makeEndpoint, type Endpoint } from "../../upstream/cluster.ts";

/** External endpoints kept; bounded, since egress.allowAll lets the app name any host. */
const MAX_EXTERNAL = 1024;

/**
 * The balancer of the egress chain: the endpoint of a call leaving the mesh is the external
 * host itself (`ctx.service`, lower case) on the port the consumer listener chose
 * (`ctx.port`). Endpoint objects are kept per address so their counters survive; each
 * retry attempt gets the same endpoint again.
 */
export const egressEndpoint: HandlerFactory = (): Handler => {
  const known = new Map<string, Endpoint>();
  return async function egressEndpoint(ctx, next) {
    if (!ctx.endpoint) {
      const host = ctx.service.includes(":") ? `[${ctx.service}]` : ctx.service;
      const address = `${host}:${ctx.port ?? "80"}`;
      let endpoint = known.get(address);
      if (!endpoint) {
        if (known.size >= MAX_EXTERNAL) known.clear();
        known.set(address, (endpoint = makeEndpoint(address, { origin: "egress" })));
      }
      ctx.endpoint = endpoint;
    }
    await next();
  };
};
