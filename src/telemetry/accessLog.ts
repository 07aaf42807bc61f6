/**
 * The access log: one line per request, JSON by default or an Envoy-like format string. The
 * request path only captures a small entry; formatting and writing happen on a timer (or when
 * the buffer fills), in one write per batch, to stdout or appended to a file.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import type { AccessLogOptions } from "./schema.ts";

/** What one request leaves in the log. */
export interface AccessEntry {
  startTime: number; // epoch ms
  direction: string;
  method: string;
  path: string;
  protocol: string;
  status: number;
  /** The mesher error code ("response flags"), or "" when the upstream answered. */
  errorCode: string;
  bytesReceived: number | null;
  bytesSent: number | null;
  /** ms from arrival to response headers. */
  duration: number;
  service: string;
  route: string;
  cluster: string;
  upstreamHost: string;
  attempts: number;
  downstreamAddress: string;
  traceId: string;
  /** Request headers the format needs, by lower-case name; response headers under "resp:". */
  headers: Record<string, string | null>;
}

type Piece = string | ((e: AccessEntry) => string);

/** Header names the JSON format reads. */
const JSON_HEADERS = ["x-request-id", "user-agent", "x-forwarded-for", "host"];

const dash = (x: string | number | null | undefined) => (x === null || x === undefined || x === "" ? "-" : String(x));

/** `%REQ(A?B):N%` reads header A, else B, truncated to N characters. */
function headerPiece(kind: "REQ" | "RESP", spec: string, max: number | undefined, names: Set<string>): (e: AccessEntry) => string {
  const alternatives = spec.toLowerCase().split("?");
  for (const a of alternatives) {
    if (!a.startsWith(":")) names.add(kind === "RESP" ? `resp:${a}` : a);
    else if (kind === "REQ" && a === ":authority") names.add("host"); // read from the Host header
  }
  return (e) => {
    let value: string | null | undefined;
    for (const name of alternatives) {
      if (kind === "REQ" && name === ":method") value = e.method;
      else if (kind === "REQ" && name === ":path") value = e.path;
      else if (kind === "REQ" && name === ":authority") value = e.headers.host;
      else value = e.headers[kind === "RESP" ? `resp:${name}` : name];
      if (value) break;
    }
    return dash(max !== undefined && value ? value.slice(0, max) : value);
  };
}

const OPERATORS: Record<string, (e: AccessEntry) => string> = {
  START_TIME: (e) => new Date(e.startTime).toISOString(),
  PROTOCOL: (e) => e.protocol,
  RESPONSE_CODE: (e) => String(e.status),
  RESPONSE_FLAGS: (e) => dash(e.errorCode),
  BYTES_RECEIVED: (e) => dash(e.bytesReceived),
  BYTES_SENT: (e) => dash(e.bytesSent),
  DURATION: (e) => String(Math.round(e.duration)),
  UPSTREAM_HOST: (e) => dash(e.upstreamHost),
  UPSTREAM_CLUSTER: (e) => dash(e.cluster),
  ROUTE_NAME: (e) => dash(e.route),
  DOWNSTREAM_REMOTE_ADDRESS: (e) => dash(e.downstreamAddress),
  UPSTREAM_REQUEST_ATTEMPT_COUNT: (e) => String(e.attempts),
  TRACE_ID: (e) => dash(e.traceId),
  DIRECTION: (e) => e.direction,
  SERVICE: (e) => dash(e.service),
};

/** Envoy's default format, as users know it. */
export const ENVOY_DEFAULT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"';

export interface CompiledFormat {
  format: (e: AccessEntry) => string;
  /** Headers to capture per request. */
  headers: string[];
}

/**
 * Compiles "json", "envoy" (Envoy's default) or a format string. Throws an Error naming the
 * first unknown operator (the schema turns it into a config error).
 */
export function compileFormat(format: string): CompiledFormat {
  if (format === "json") {
    return {
      headers: JSON_HEADERS,
      format: (e) =>
        JSON.stringify({
          start_time: new Date(e.startTime).toISOString(),
          direction: e.direction,
          method: e.method,
          path: e.path,
          protocol: e.protocol,
          response_code: e.status,
          response_flags: e.errorCode || null,
          bytes_received: e.bytesReceived,
          bytes_sent: e.bytesSent,
          duration_ms: Math.round(e.duration * 1000) / 1000,
          service: e.service,
          route: e.route || null,
          upstream_cluster: e.cluster || null,
          upstream_host: e.upstreamHost || null,
          attempts: e.attempts,
          downstream_remote_address: e.downstreamAddress,
          x_forwarded_for: e.headers["x-forwarded-for"] ?? null,
          user_agent: e.headers["user-agent"] ?? null,
          request_id: e.headers["x-request-id"] ?? null,
          authority: e.headers.host ?? null,
          trace_id: e.traceId || null,
        }),
    };
  }
  const text = format === "envoy" ? ENVOY_DEFAULT_FORMAT : format;
  const names = new Set<string>();
  const pieces: Piece[] = [];
  const re = /%([A-Z_]+)(?:\(([^)]*)\))?(?::(\d+))?%/g;
  let last = 0;
  for (let m; (m = re.exec(text)); ) {
    if (m.index > last) pieces.push(text.slice(last, m.index));
    last = re.lastIndex;
    const [, op, arg, max] = m;
    if (op === "REQ" || op === "RESP") {
      if (!arg) throw new Error(`%${op}(...)% needs a header name`);
      pieces.push(headerPiece(op, arg, max === undefined ? undefined : Number(max), names));
    } else if (OPERATORS[op!]) pieces.push(OPERATORS[op!]!);
    else throw new Error(`unknown access log operator %${op}% (known: REQ(X), RESP(X), ${Object.keys(OPERATORS).join(", ")})`);
  }
  if (last < text.length) pieces.push(text.slice(last));
  return {
    headers: [...names],
    format: (e) => {
      let out = "";
      for (const p of pieces) out += typeof p === "string" ? p : p(e);
      return out;
    },
  };
}

/** Flush when this many entries wait, or every FLUSH_MS. */
const BATCH = 256;
const FLUSH_MS = 1000;

export class AccessLog {
  readonly #compiled: CompiledFormat;
  readonly #out: WriteStream | NodeJS.WriteStream;
  readonly #ownsOut: boolean;
  #pending: AccessEntry[] = [];
  #scheduled = false;
  readonly #timer: Timer;

  constructor(options: AccessLogOptions) {
    this.#compiled = compileFormat(options.format);
    this.#ownsOut = options.path !== "-";
    this.#out = this.#ownsOut ? createWriteStream(options.path, { flags: "a" }) : process.stdout;
    this.#timer = setInterval(() => this.flush(), FLUSH_MS);
    this.#timer.unref();
  }

  /** Header names to capture into an entry. */
  get headers(): string[] {
    return this.#compiled.headers;
  }

  add(entry: AccessEntry): void {
    this.#pending.push(entry);
    if (this.#pending.length >= BATCH && !this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Formats and writes what is pending, in one write. */
  flush(): void {
    this.#scheduled = false;
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    let text = "";
    for (const e of batch) text += `${this.#compiled.format(e)}\n`;
    this.#out.write(text);
  }

  /** Writes what is pending and closes a file (stdout stays open). */
  close(): Promise<void> {
    clearInterval(this.#timer);
    this.flush();
    if (!this.#ownsOut) return Promise.resolve();
    return new Promise((resolve) => (this.#out as WriteStream).end(resolve));
  }
}
