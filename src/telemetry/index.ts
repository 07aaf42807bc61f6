/**
 * Everything a request leaves behind, recorded at one place (the listener's runChain): a span
 * (or none), the metrics, the live stats and an access log line. Built once per mesher;
 * `configure` swaps the tracer and the access log when a reload changes their config.
 */
import type { ResolvedConfig } from "../config/schema.ts";
import type { MeshError } from "../pipeline/errors.ts";
import type { Ctx } from "../pipeline/types.ts";
import { AccessLog, type AccessEntry } from "./accessLog.ts";
import type { Metrics } from "./metrics.ts";
import { Stats } from "./stats.ts";
import type { Hop, HopTracer, TraceCtx, TraceResult } from "./tracing/tracer.ts";

/** The longest a stop waits for exporters to deliver what is buffered. */
const STOP_TIMEOUT_MS = 3000;

/**
 * The tracer's module, loaded when a config first turns tracing on: the OpenTelemetry SDK
 * costs ~10 MB of RSS that a sidecar without `tracing` should not pay. Synchronous (Bun's
 * require of an ES module), because the first request after start must be traced; the
 * exporters' gRPC clients, the heavy part, load in the background (otlp.ts, reporter.ts).
 */
const tracerModule = (): typeof import("./tracing/tracer.ts") => require("./tracing/tracer.ts");

export class Telemetry {
  readonly stats = new Stats();
  #tracer?: HopTracer;
  #tracingKey = "";
  #log?: AccessLog;
  #logKey = "";
  #logHeaders: string[] = [];
  #config!: ResolvedConfig;

  constructor(
    readonly metrics: Metrics,
    /** Unique per process: the service instance spans and segments name. */
    readonly instance: string,
    config: ResolvedConfig,
  ) {
    this.configure(config);
  }

  /** Applies a (re)loaded config; rebuilds the tracer or the log only when their config changed. */
  configure(config: ResolvedConfig): void {
    this.#config = config;
    const tracingKey = JSON.stringify(config.tracing ?? null) + config.service.name + config.service.version;
    if (tracingKey !== this.#tracingKey) {
      void this.#tracer?.shutdown();
      this.#tracingKey = tracingKey;
      const s = config.service;
      this.#tracer = config.tracing
        ? new (tracerModule().HopTracer)(config.tracing, { service: s.name, version: s.version, app: s.app, instance: this.instance }, (exporter, n) =>
            this.metrics.droppedSpans(exporter, n),
          )
        : undefined;
    }
    const log = config.accessLog?.enabled ? config.accessLog : undefined;
    const logKey = JSON.stringify(log ?? null);
    if (logKey !== this.#logKey) {
      void this.#log?.close();
      this.#logKey = logKey;
      this.#log = log ? new AccessLog(log) : undefined;
      this.#logHeaders = this.#log?.headers ?? [];
    }
  }

  /**
   * Before the chain runs: gives the request an x-request-id when tracing or the access log is
   * on (and it has none), and starts the hop's span when the request is sampled. The fast path
   * calls it too, with its own TraceCtx; `decided`: it drew the sample of a new trace already.
   */
  begin(ctx: TraceCtx, decided = false): Hop | undefined {
    if ((this.#tracer || this.#log) && !ctx.headers.has("x-request-id")) ctx.headers.set("x-request-id", crypto.randomUUID());
    if (!this.#tracer) return undefined;
    try {
      return this.#tracer.begin(ctx, decided);
    } catch (err) {
      if (!this.#warned) console.error("mesher: tracing failed (the request is served untraced):", err);
      this.#warned = true;
      return undefined;
    }
  }

  /** After the chain: records the request once everywhere. Never throws into the data path. */
  end(ctx: Ctx, res: Response, error: MeshError | undefined, hop: Hop | undefined): void {
    try {
      this.#record(ctx, res, error, hop);
    } catch (err) {
      if (!this.#warned) console.error("mesher: telemetry failed (the request was served):", err);
      this.#warned = true;
    }
  }

  #warned = false;

  #record(ctx: Ctx, res: Response, error: MeshError | undefined, hop: Hop | undefined): void {
    const ms = performance.now() - ctx.start;
    const self = this.#config.service;
    const provider = ctx.direction === "provider";
    const service = provider ? self.name : ctx.service;
    const errorCode = error?.code ?? "";
    this.metrics.observe({
      direction: ctx.direction,
      service,
      app: self.app,
      version: provider ? self.version : (ctx.endpoint?.tags.version ?? ""),
      route: ctx.route?.name ?? "",
      endpoint: ctx.endpoint?.address ?? "",
      status: res.status,
      errorCode,
      seconds: ms / 1000,
    });
    this.stats.record(ctx.direction, service, res.status, error !== undefined || res.status >= 500, ms);
    if (hop) this.#endSpan(hop, ctx, res, error);
    if (this.#log) this.#log.add(this.#entry(ctx, res, errorCode, ms, hop));
  }

  /** Ends a span the fast path started (its metrics it counts itself). Never throws. */
  endSpan(hop: Hop, ctx: TraceCtx, res: TraceResult, error: MeshError | undefined): void {
    try {
      this.#endSpan(hop, ctx, res, error);
    } catch (err) {
      if (!this.#warned) console.error("mesher: tracing failed (the request was served):", err);
      this.#warned = true;
    }
  }

  #endSpan(hop: Hop, ctx: TraceCtx, res: TraceResult, error: MeshError | undefined): void {
    // (Tracing switched off by a reload mid-request: the span is dropped with its tracer.)
    this.#tracer?.end(hop, ctx, res, error);
  }

  #entry(ctx: Ctx, res: Response, errorCode: string, ms: number, hop: Hop | undefined): AccessEntry {
    const headers: Record<string, string | null> = {};
    for (const name of this.#logHeaders) {
      // The Host as the caller sent it: the transport rewrites ctx.headers' host to the endpoint.
      headers[name] = name.startsWith("resp:")
        ? res.headers.get(name.slice(5))
        : name === "host"
          ? ctx.req.headers.get(name)
          : (ctx.headers.get(name) ?? ctx.req.headers.get(name));
    }
    const reqLength = ctx.req.headers.get("content-length");
    const resLength = res.headers.get("content-length");
    return {
      startTime: Date.now() - ms,
      direction: ctx.direction,
      method: ctx.method,
      path: ctx.path,
      protocol: ctx.protocol === "grpc" ? "HTTP/2" : "HTTP/1.1",
      status: res.status,
      errorCode,
      bytesReceived: reqLength === null ? (ctx.req.body ? null : 0) : Number(reqLength),
      bytesSent: resLength === null ? (res.body ? null : 0) : Number(resLength),
      duration: ms,
      service: ctx.service,
      route: ctx.route?.name ?? "",
      cluster: ctx.cluster?.name ?? "",
      upstreamHost: ctx.endpoint?.address ?? "",
      attempts: ctx.attempts,
      downstreamAddress: ctx.clientAddress,
      traceId: hop?.traceId ?? "",
      headers,
    };
  }

  /** Sends buffered spans and log lines now (tests; stop). Never rejects. */
  async flush(): Promise<void> {
    this.#log?.flush();
    await this.#tracer?.flush();
  }

  /**
   * Flushes and closes exporters and the log. Never rejects, and gives up on a collector that
   * does not answer within STOP_TIMEOUT_MS so a stop is never held by it.
   */
  async stop(): Promise<void> {
    let timer: Timer | undefined;
    const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_TIMEOUT_MS)));
    await Promise.race([Promise.all([this.#tracer?.shutdown(), this.#log?.close()]), limit]);
    clearTimeout(timer);
  }
}
