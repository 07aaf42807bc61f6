#!/usr/bin/env bun
/**
 * The TSF-style demo in one command: user -> shop -> promotion, each app behind its own
 * sidecar, tracing to an OTLP collector (and optionally SkyWalking). One request goes to user;
 * the trace it made is printed (from the built-in receiver when no collector is given).
 *
 *   bun recipes/tsf-demo/run.ts                                  # built-in OTLP receiver
 *   bun recipes/tsf-demo/run.ts --otlp http://127.0.0.1:4317     # your collector (Jaeger, otelcol...)
 *   bun recipes/tsf-demo/run.ts --skywalking 127.0.0.1:11800     # also report to a SkyWalking OAP
 *   bun recipes/tsf-demo/run.ts --keep                           # stay up: call it, open /stats
 */
import { parseArgs } from "node:util";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "../../test/receivers/otlp.ts";
import { startTsfDemo } from "./topology.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    otlp: { type: "string" },
    skywalking: { type: "string" },
    keep: { type: "boolean" },
  },
});

let receiver: OtlpReceiver | undefined;
let otlp = values.otlp ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
if (!otlp) {
  receiver = await startOtlpReceiver();
  otlp = receiver.url;
}
const demo = startTsfDemo({ otlp, skywalking: values.skywalking });
const s = demo.sidecars;
console.log(`tsf-demo: user -> shop -> promotion, each behind a sidecar; spans to ${otlp}${receiver ? " (built-in receiver)" : ""}`);
console.log(`  user's sidecar:      provider ${s.user.addresses.provider}  consumer ${s.user.addresses.consumer}  admin ${s.user.addresses.admin}`);
console.log(`  shop's sidecar:      provider ${s.shop.addresses.provider}  consumer ${s.shop.addresses.consumer}  admin ${s.shop.addresses.admin}`);
console.log(`  promotion's sidecar: provider ${s.promotion.addresses.provider}  consumer ${s.promotion.addresses.consumer}  admin ${s.promotion.addresses.admin}`);

// We start the trace ourselves so its id is known even when the spans go to another collector.
const traceId = crypto.getRandomValues(new Uint8Array(16)).toHex();
const res = await demo.call({ traceparent: `00-${traceId}-${crypto.getRandomValues(new Uint8Array(8)).toHex()}-01` });
console.log(`GET http://${demo.entry}/api/v6/user/create -> ${res.status} ${await res.text()}`);
console.log(`trace ${traceId}`);

function printTree(spans: ReceivedSpan[]): void {
  const ids = new Set(spans.map((x) => x.spanId));
  const walk = (parent: (x: ReceivedSpan) => boolean, depth: number) => {
    for (const x of spans.filter(parent).sort((a, b) => Number(a.startNanos - b.startNanos))) {
      const ms = Number(x.endNanos - x.startNanos) / 1e6;
      const kind = x.kind.replace("SPAN_KIND_", "").toLowerCase();
      const where = x.attributes["mesher.endpoint"] ? ` -> ${x.attributes["mesher.endpoint"]}` : "";
      console.log(`${"  ".repeat(depth + 1)}${x.service} ${kind} "${x.name}" ${x.attributes["http.response.status_code"]}${where} ${ms.toFixed(2)} ms  span ${x.spanId}`);
      walk((y) => y.parentSpanId === x.spanId, depth + 1);
    }
  };
  walk((x) => !ids.has(x.parentSpanId), 0);
}

if (receiver) {
  const spans = await receiver.waitFor((all) => all.filter((x) => x.traceId === traceId).length >= 5);
  printTree(spans.filter((x) => x.traceId === traceId));
} else {
  console.log("look it up in your collector's UI");
}

if (values.keep) {
  console.log(`\ncall it again:  curl http://${demo.entry}/api/v6/user/create`);
  console.log(`stats page:     http://${s.user.addresses.admin}/stats   metrics: http://${s.user.addresses.admin}/v1/mesher/metrics`);
  console.log("Ctrl-C to stop");
  process.once("SIGINT", async () => {
    await demo.stop();
    await receiver?.stop();
    process.exit(0);
  });
} else {
  await demo.stop();
  await receiver?.stop();
  process.exit(res.ok ? 0 : 1);
}
