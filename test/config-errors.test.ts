/**
 * Bad traffic-management settings (issue 3's keys) are refused by the CLI before any port
 * opens, every problem named by its field path, with what was there and what was expected.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { CLI, run, tempDir } from "./helpers.ts";

test("bad routes, retry, circuitBreaker, rateLimit, loadBalancer, outlierDetection, fault and timeout are all named", async () => {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  const dir = tempDir({
    "bad.yaml": `
service: { name: shop }
listen: { consumer: "127.0.0.1:${port}", admin: false }
timeout: fast
services:
  reviews:
    endpoints: ["127.0.0.1:1"]
    routes:
      - precedence: high
        match: { headers: { end-user: { exactly: jason } }, path: { regex: "(" } }
        route: [{ tags: { version: v1 }, weight: 80 }, { tags: { version: v2 }, weight: 30 }]
    retry: { attempts: -1, on: [sometimes], backoff: { base: soon } }
    circuitBreaker: { errorThresholdPercentage: 150, scope: galaxy, sleepWindow: "1 hour" }
    rateLimit: { rate: -5 }
    loadBalancer: roundRobbin
    outlierDetection: { maxEjectionPercent: 200 }
    fault: { abort: { httpStatus: 99 } }
  ratings:
    endpoints: ["127.0.0.1:2"]
    loadBalancer: { kind: consistentHash }
rateLimit: { provider: { sources: { checkout: { rate: fast } } } }
`,
  });
  const r = await run(["bun", CLI, "-c", join(dir, "bad.yaml")]);
  expect(r.code).toBe(1);
  const duration = 'a duration: milliseconds as a number, or a string like "500ms", "30s", "2m"';
  for (const line of [
    'services.reviews.routes[0].precedence: a number, got "high"',
    'services.reviews.routes[0].match.headers["end-user"].exactly: a known field (this one is not)',
    'services.reviews.routes[0].match.path.regex: a valid regular expression, got "("',
    "services.reviews.routes[0].route: weights summing to at most 100",
    'services.reviews.loadBalancer: a balancer name (roundRobin, random, weightedRoundRobin, leastRequest, weightedResponse, sessionSticky) or { kind, ...options }',
    "services.reviews.retry.attempts: a value >= 0, got -1",
    'services.reviews.retry.on[0]: one of ("5xx" | "gateway-error" | "connect-failure" | "reset" | "retriable-4xx" | "retriable-status-codes"), got "sometimes"',
    `services.reviews.retry.backoff.base: ${duration}, got "soon"`,
    'services.reviews.circuitBreaker.scope: one of ("service" | "endpoint" | "route"), got "galaxy"',
    "services.reviews.circuitBreaker.errorThresholdPercentage: a value <= 100, got 150",
    `services.reviews.circuitBreaker.sleepWindow: ${duration}, got "1 hour"`,
    "services.reviews.outlierDetection.maxEjectionPercent: a value <= 100, got 200",
    "services.reviews.rateLimit.rate: a value >= 0, got -5",
    "services.reviews.fault.abort.httpStatus: a value >= 100, got 99",
    "services.ratings.loadBalancer: consistentHash needs header, cookie or sourceIp: true",
    `timeout: ${duration}, got "fast"`,
    'rateLimit.provider.sources.checkout.rate: a number, got "fast"',
  ]) {
    expect(r.stderr).toContain(line);
  }
  // Refused before listening: the consumer port stayed closed.
  const open = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then(
    (s) => (s.end(), true),
    () => false,
  );
  expect(open).toBe(false);
});

test("a TypeScript config with a syntax error is refused with file, line, column and Bun's message", async () => {
  const dir = tempDir({
    "syntax.config.ts": 'import { defineConfig } from "mesher";\nexport default defineConfig({\n  service: { name: "shop" ,,},\n});\n',
  });
  const r = await run(["bun", CLI, "check", "-c", join(dir, "syntax.config.ts")]);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("invalid config in syntax.config.ts");
  expect(r.stderr).toContain('syntax.config.ts:3:28: valid syntax (Expected identifier but found ","), got "service: { name: \\"shop\\" ,,},"');
});
