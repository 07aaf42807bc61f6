import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AccessLog, compileFormat, type AccessEntry } from "./accessLog.ts";

const entry: AccessEntry = {
  startTime: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
  direction: "consumer",
  method: "POST",
  path: "/items?x=1",
  protocol: "HTTP/1.1",
  status: 503,
  errorCode: "no_healthy_upstream",
  bytesReceived: 12,
  bytesSent: null,
  duration: 4.6,
  service: "shop",
  route: "default",
  cluster: "shop",
  upstreamHost: "",
  attempts: 2,
  downstreamAddress: "127.0.0.1",
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  headers: { "x-request-id": "rid", "user-agent": "curl/8", "x-forwarded-for": null, host: "shop:8080", "resp:x-envoy-upstream-service-time": null },
};

describe("compileFormat", () => {
  test("%REQ(:AUTHORITY)% captures the Host header (Envoy's default format prints it)", () => {
    expect(compileFormat("envoy").headers).toContain("host");
    expect(compileFormat("%REQ(:AUTHORITY)%").headers).toEqual(["host"]);
  });

  test("Envoy's default format, with - for what is missing", () => {
    const f = compileFormat("envoy");
    expect(f.format(entry)).toBe('[2026-01-02T03:04:05.678Z] "POST /items?x=1 HTTP/1.1" 503 no_healthy_upstream 12 - 5 - "-" "curl/8" "rid" "shop:8080" "-"');
    expect(f.headers).toContain("x-request-id");
    expect(f.headers).not.toContain(":method");
  });

  test("operators, alternatives and truncation", () => {
    const f = compileFormat("%DIRECTION% %SERVICE% %UPSTREAM_CLUSTER% %ROUTE_NAME% %UPSTREAM_REQUEST_ATTEMPT_COUNT% %TRACE_ID% %REQ(X-MISSING?USER-AGENT):3% %DOWNSTREAM_REMOTE_ADDRESS%");
    expect(f.format(entry)).toBe("consumer shop shop default 2 4bf92f3577b34da6a3ce929d0e0e4736 cur 127.0.0.1");
  });

  test("JSON", () => {
    const line = JSON.parse(compileFormat("json").format(entry));
    expect(line).toMatchObject({ response_code: 503, response_flags: "no_healthy_upstream", upstream_host: null, request_id: "rid", attempts: 2, duration_ms: 4.6 });
  });

  test("unknown operators and REQ without a name are refused", () => {
    expect(() => compileFormat("%BOGUS%")).toThrow(/unknown access log operator %BOGUS%/);
    expect(() => compileFormat("%REQ%")).toThrow(/needs a header name/);
  });
});

test("AccessLog batches lines and appends them to a file", async () => {
  const path = join(mkdtempSync(join(tmpdir(), "mesher-log-")), "a.log");
  const log = new AccessLog({ enabled: true, format: "%RESPONSE_CODE%", path });
  for (let i = 0; i < 300; i++) log.add(entry); // more than a batch: flushed on the next turn
  await new Promise((r) => setImmediate(r));
  log.add({ ...entry, status: 200 });
  await log.close();
  const lines = readFileSync(path, "utf8").trim().split("\n");
  expect(lines).toHaveLength(301);
  expect(lines.at(-1)).toBe("200");
});
