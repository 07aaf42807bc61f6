import type { HandlerFactory } from "../pipeline/types.ts";
import { loadBalance } from "./loadBalance/index.ts";
import { router } from "./router/index.ts";
import { transport } from "./transport/index.ts";

/** Built-in handlers by the names chains use. */
export const builtinHandlers: Record<string, HandlerFactory> = {
  router,
  loadBalance,
  transport,
};

/** Mesher's default chains (seed 001: consumer router..transport, provider ..transport). */
export const DEFAULT_CHAINS = {
  consumer: ["router", "loadBalance", "transport"],
  provider: ["transport"],
  /** Calls to external hosts (Mesher's egress chain is ratelimiter-consumer, transport). */
  egress: ["transport"],
} as const;
