import { LRUCache } from "lru-cache";
import { MeshError } from "../../pipeline/errors.ts";
import type { Ctx, Handler, HandlerFactory } from "../../pipeline/types.ts";
import { fingerprint, keep, passThrough, serviceSetting } from "../settings.ts";
import type { ProviderRateLimitOptions, RateLimitOptions } from "./schema.ts";
import { TokenBucket } from "./tokenBucket.ts";

type By = NonNullable<RateLimitOptions["by"]>;

/** Buckets of one limit: one, or one per key in a bounded LRU. */
class Limit {
  readonly #one?: TokenBucket;
  readonly #many?: LRUCache<string, TokenBucket>;
  constructor(
    readonly rate: number,
    readonly burst: number,
    readonly by: By,
    maxKeys: number,
  ) {
    if (by === "global") this.#one = new TokenBucket(rate, burst);
    else this.#many = new LRUCache({ max: maxKeys });
  }

  take(ctx: Ctx): boolean {
    if (this.#one) return this.#one.take();
    const key = keyOf(ctx, this.by);
    let b = this.#many!.get(key);
    if (!b) this.#many!.set(key, (b = new TokenBucket(this.rate, this.burst)));
    return b.take();
  }
}

function keyOf(ctx: Ctx, by: By): string {
  if (by === "source") return ctx.source?.name ?? "";
  if (by === "clientIp") return ctx.clientAddress;
  if (typeof by === "object") return ctx.headers.get(by.header) ?? "";
  return "";
}

const burstOf = (rate: number, burst?: number) => burst ?? Math.max(1, Math.ceil(rate));

/**
 * Token-bucket rate limiting; over the limit a request gets 429 `rate_limited`.
 * Consumer side: `services.X.rateLimit` (else `rateLimit.consumer`) limits calls to X, in one
 * bucket (`by: "global"`, the default) or per caller, client address or header value.
 * Provider side: `rateLimit.provider` limits calls reaching the local app, per caller service
 * by default, with `sources` giving some callers their own rate (Mesher's
 * `Provider.qps.limit.<source>`).
 */
export const rateLimit: HandlerFactory = (env): Handler => {
  const { config, direction } = env;
  const rejected = (service: string, side: string, what: string): never => {
    env.metrics?.resilience.rateLimited.inc({ service_name: service, side });
    throw new MeshError("rate_limited", `too many requests ${what}`);
  };

  if (direction === "provider") {
    const o: ProviderRateLimitOptions | undefined = config.rateLimit?.provider;
    if (!o) return passThrough("rateLimit");
    const self = config.service.name;
    const fp = fingerprint(o);
    const main =
      o.rate === undefined ? undefined : keep(env, `rateLimit:provider:${fp}`, () => new Limit(o.rate!, burstOf(o.rate!, o.burst), o.by ?? "source", o.maxKeys));
    const perSource = new Map(
      Object.entries(o.sources).map(([name, s]) => [name, keep(env, `rateLimit:provider:${name}:${fp}`, () => new Limit(s.rate, burstOf(s.rate, s.burst), "global", 1))]),
    );
    return async function rateLimit(ctx, next) {
      const limit = (ctx.source && perSource.get(ctx.source.name)) || main;
      if (limit && !limit.take(ctx)) rejected(self, "provider", `to ${self}${ctx.source ? ` from ${ctx.source.name}` : ""}`);
      return next();
    };
  }

  const setting = serviceSetting(config, "rateLimit");
  if (setting.none) return passThrough("rateLimit");
  const limits = new Map<string, Limit | null>();
  return async function rateLimit(ctx, next) {
    let limit = limits.get(ctx.service);
    if (limit === undefined) {
      const o = setting(ctx.service);
      limit = o ? keep(env, `rateLimit:${ctx.service}:${fingerprint(o)}`, () => new Limit(o.rate, burstOf(o.rate, o.burst), o.by ?? "global", o.maxKeys)) : null;
      limits.set(ctx.service, limit);
    }
    if (limit && !limit.take(ctx)) rejected(ctx.service, "consumer", `to ${ctx.service}`);
    return next();
  };
};
