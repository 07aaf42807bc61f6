/**
 * The tracing decision of the fast path (fastdirect.ts), taken from the request's header list
 * without building Headers: the same decision the tracer takes (telemetry/tracing/tracer.ts,
 * parent-based with `tracing.sampler` for new traces), in the cases that need no span:
 * - PASS: the request carries a "not sampled" decision (`traceparent` with flags 00,
 *   `b3: 0`, `x-b3-sampled: 0`): it goes on as it came, like the regular path leaves it;
 * - DENY: a new trace, not sampled: `x-b3-sampled: 0` is added (propagation.ts `injectDeny`);
 * - SAMPLE: a new trace, sampled: the regular engine must build the span, and is told the
 *   decision was taken (so the share stays `sampler`);
 * - REGULAR: anything else (a sampled parent, forced tracing, ids to carry on, a format the
 *   fast path does not read): the regular engine decides.
 * NO_REQUEST_ID is or-ed in when the request has no `x-request-id` (the regular path adds one
 * whenever tracing is on).
 */

export const TRACE_PASS = 0;
export const TRACE_DENY = 1;
export const TRACE_SAMPLE = 2;
export const TRACE_REGULAR = 3;
export const TRACE_NO_REQUEST_ID = 4;

/** A valid version-00 traceparent (the W3C propagator rejects all-zero ids and other versions' rules differ). */
const TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-([0-9a-f]{2})$/;

/** `headers`: lower-case names and values, [name, value, ...]; `ratio`: tracing.sampler. */
export function traceVerdict(headers: string[], ratio: number): number {
  let traceparent: string | undefined;
  let b3: string | undefined;
  let b3Sampled: string | undefined;
  let unread = false;
  let requestId = false;
  for (let i = 0; i < headers.length; i += 2) {
    switch (headers[i]) {
      case "traceparent":
        if (traceparent !== undefined) unread = true; // repeated: the propagator sees them joined
        traceparent = headers[i + 1]!;
        break;
      case "b3":
        if (b3 !== undefined) unread = true;
        b3 = headers[i + 1]!;
        break;
      case "x-b3-sampled":
        if (b3Sampled !== undefined) unread = true;
        b3Sampled = headers[i + 1]!;
        break;
      case "x-b3-traceid":
      case "sw8":
      case "x-ot-span-context":
        unread = true;
        break;
      case "x-envoy-force-trace":
      case "x-client-trace-id":
        return TRACE_REGULAR;
      case "x-request-id":
        requestId = true;
        break;
    }
  }
  const id = requestId ? 0 : TRACE_NO_REQUEST_ID;
  if (traceparent !== undefined && !unread) {
    const m = TRACEPARENT.exec(traceparent);
    // A valid traceparent decides whatever B3 headers say (the W3C context is read first).
    if (m) return parseInt(m[1]!, 16) & 1 ? TRACE_REGULAR : TRACE_PASS | id;
    return TRACE_REGULAR;
  }
  if (unread || traceparent !== undefined) return TRACE_REGULAR;
  if (b3 !== undefined) return b3 === "0" ? TRACE_PASS | id : TRACE_REGULAR;
  if (b3Sampled !== undefined) return b3Sampled === "0" ? TRACE_PASS | id : TRACE_REGULAR;
  return (ratio >= 1 || Math.random() < ratio ? TRACE_SAMPLE : TRACE_DENY) | id;
}
