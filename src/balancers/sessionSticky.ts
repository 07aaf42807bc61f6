import { LRUCache } from "lru-cache";
import type { Ctx } from "../pipeline/types.ts";
import type { Endpoint } from "../upstream/cluster.ts";
import { requestKey } from "./requestKey.ts";
import { roundRobin } from "./roundRobin.ts";
import type { Balancer } from "./types.ts";

export interface SessionStickyOptions {
  /** Cookie carrying the session; set on the response when the client has none. */
  cookie?: string;
  /** Header carrying the session (checked before the cookie). */
  header?: string;
  /** A session idle this long (ms) is forgotten (go-chassis sessionTimeoutInSeconds: 30). */
  sessionTimeout?: number;
  /** After this many failures in a row the session moves (go-chassis successiveFailedTimes: 5). */
  failures?: number;
  /** Most sessions remembered (least recently used are dropped). */
  maxSessions?: number;
}

interface Session {
  address: string;
  failures: number;
}

/**
 * Session stickiness as go-chassis' `SessionStickiness`: the first request of a session is
 * balanced round-robin, later ones go to the same endpoint while it is a candidate and has not
 * failed `failures` times in a row; otherwise the session falls back to a new endpoint. With
 * `cookie` and no session yet, mesher makes one and answers with `Set-Cookie`.
 */
export function sessionSticky(options: SessionStickyOptions = {}): Balancer {
  const by = { header: options.header, cookie: options.cookie ?? (options.header ? undefined : "mesher-session") };
  const maxFailures = options.failures ?? 5;
  const sessions = new LRUCache<string, Session>({
    max: options.maxSessions ?? 10_000,
    ttl: options.sessionTimeout ?? 30_000,
    updateAgeOnGet: true,
  });
  const rr = roundRobin();
  const fresh = new WeakMap<Ctx, string>();

  return {
    pick(candidates, ctx) {
      let id = requestKey(ctx, by);
      const s = id === undefined ? undefined : sessions.get(id);
      if (s) {
        const e = candidates.find((c) => c.address === s.address);
        if (e) return e;
      }
      const e = rr.pick(candidates, ctx);
      if (!e) return undefined;
      if (id === undefined && by.cookie) fresh.set(ctx, (id = crypto.randomUUID()));
      if (id !== undefined) sessions.set(id, { address: e.address, failures: 0 });
      return e;
    },
    done(ctx, endpoint: Endpoint, _ms, failed) {
      const made = fresh.get(ctx);
      const id = made ?? requestKey(ctx, by);
      if (id === undefined) return;
      const s = sessions.get(id);
      if (s && s.address === endpoint.address) {
        s.failures = failed ? s.failures + 1 : 0;
        if (s.failures >= maxFailures) sessions.delete(id);
      }
      if (made && ctx.res && by.cookie) {
        ctx.res.headers.append("set-cookie", `${by.cookie}=${encodeURIComponent(made)}; Path=/; HttpOnly`);
      }
    },
  };
}
