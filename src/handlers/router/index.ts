import { MeshError } from "../../pipeline/errors.ts";
import type { Handler, HandlerFactory } from "../../pipeline/types.ts";

/**
 * Resolves the destination service to its cluster. (Route rules — tags and weights — sit on
 * top of this.)
 */
export const router: HandlerFactory = ({ clusters }): Handler =>
  async function router(ctx, next) {
    const cluster = clusters.get(ctx.service);
    if (!cluster) {
      throw new MeshError("unknown_service", `no service named "${ctx.service}" is known to this sidecar`);
    }
    ctx.cluster = cluster;
    ctx.route ??= { name: "default" };
    await next();
  };
