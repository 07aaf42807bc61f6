import { MeshError } from "../../pipeline/errors.ts";
import type { Handler, HandlerFactory } from "../../pipeline/types.ts";

/**
 * Resolves the destination service to its cluster. (Route rules — tags and weights — sit on
 * top of this.)
 */
export const router: HandlerFactory = ({ clusters }): Handler =>
  async function router(ctx, next) {
    // Names static config does not know are asked of the registry (a bounded wait, then cached).
    const cluster = clusters.get(ctx.service) ?? (await clusters.discover(ctx.service));
    if (!cluster) {
      throw new MeshError("unknown_service", `no service named "${ctx.service}" is known to this sidecar`);
    }
    ctx.cluster = cluster;
    ctx.route ??= { name: "default" };
    await next();
  };
