import type { BalancerFactory } from "./types.ts";
import { roundRobin } from "./roundRobin.ts";

/** Balancers by the name `services.X.loadBalancer` uses. */
export const balancers: Record<string, BalancerFactory> = {
  roundRobin,
};

export type { Balancer, BalancerFactory } from "./types.ts";
