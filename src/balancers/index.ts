import { consistentHash } from "./consistentHash.ts";
import { leastRequest } from "./leastRequest.ts";
import { random } from "./random.ts";
import { roundRobin } from "./roundRobin.ts";
import { sessionSticky } from "./sessionSticky.ts";
import type { BalancerFactory } from "./types.ts";
import { weightedResponse } from "./weightedResponse.ts";
import { weightedRoundRobin } from "./weightedRoundRobin.ts";

/** Balancers by the name `services.X.loadBalancer` uses. */
export const balancers = {
  roundRobin,
  random,
  weightedRoundRobin,
  leastRequest,
  weightedResponse,
  sessionSticky,
  consistentHash,
} satisfies Record<string, BalancerFactory>;

export type BalancerKind = keyof typeof balancers;
export const BALANCER_KINDS = Object.keys(balancers) as BalancerKind[];

export type { Balancer, BalancerFactory } from "./types.ts";
