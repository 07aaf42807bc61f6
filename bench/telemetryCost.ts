/**
 * What telemetry costs per request, in process (no sockets): tracing unset, sampled out
 * (sampler 0), and sampled with an OTLP exporter. `bun bench/telemetryCost.ts`
 */
import { resolveConfig } from "../src/config/resolve.ts";
import { Telemetry } from "../src/telemetry/index.ts";
import { Metrics } from "../src/telemetry/metrics.ts";
import { newContext } from "../src/listeners/handle.ts";
import { startOtlpReceiver } from "../test/receivers/otlp.ts";
const otlp = await startOtlpReceiver();
const req = new Request("http://app/items?x=1", { headers: { "user-agent": "x", host: "app" } });
const res = new Response("ok", { headers: { "content-length": "2" } });
for (const mode of ["unset", "off", "on", "unset", "off", "on"]) {
  const tracing = mode === "unset" ? undefined : { sampler: mode === "off" ? 0 : 1, otlp: { endpoint: otlp.url } };
  const config = resolveConfig({ service: { name: "shop" }, tracing });
  const t = new Telemetry(new Metrics(), "i", config);
  const N = 50_000;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const ctx = newContext(req, "consumer", "127.0.0.1", new Headers(req.headers), "/items?x=1", "app");
    ctx.route = { name: "default" };
    const hop = t.begin(ctx);
    t.end(ctx, res, undefined, hop);
  }
  console.log(mode, (((performance.now() - t0) / N) * 1000).toFixed(2), "µs/request (incl. Headers copy + ctx)");
  await t.stop();
}
process.exit(0);
