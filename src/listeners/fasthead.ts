/**
 * The request head on the fast path, read and rewritten on its bytes: the parser takes the
 * request line and the headers the fast path reads (as strings: Host, Content-Length, the
 * forwarding, identity and trace headers...); every other header line stays bytes of the
 * received buffer and is copied into the head sent upstream (`writeHead`), its name in lower
 * case as the regular path sends it.
 *
 * Why bytes: measured on the fast path (bench/NOTES.md, "Change 12"), decoding the head to a
 * string and slicing it cost ~0.7 µs per request, and encoding the rebuilt head (a string of
 * concatenations) ~0.4 µs more, a quarter of the fast path's JavaScript time. Hand-rolled for
 * the reasons given in upstream/h1/parser.ts (byte-exact values, no per-header callbacks); it
 * only decides and copies: anything unusual goes to the regular engine.
 */
import { IDENTITY_HEADER } from "../pipeline/build.ts";
import { HOP_BY_HOP } from "../upstream/http.ts";
import { VIA_HEADER } from "./handle.ts";
import { TRACE_READ, UNTRACED_BOUND, writeUntraced } from "./fasttrace.ts";

/** Longest request head taken on the fast path (longer ones go to the regular engine). */
export const MAX_HEAD = 16 * 1024;

const METHODS = ["GET", "HEAD", "OPTIONS", "DELETE", "POST", "PUT", "PATCH"];
const METHOD_BYTES = METHODS.map((m) => Buffer.from(m, "latin1"));

/** Header names whose values the fast path reads; every other line passes on as bytes. */
const READ_NAMES = [
  ...new Set([
    "host", "content-length", "transfer-encoding", "upgrade", "expect", "x-forwarded-for", "x-forwarded-port",
    "x-forwarded-proto", "x-forwarded-host", "accept-encoding", IDENTITY_HEADER, VIA_HEADER, ...HOP_BY_HOP, ...TRACE_READ,
  ]),
];
/** A lower-case name's hash (as `parseHead` computes it on bytes). */
function nameHash(name: string): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (Math.imul(h, 31) + name.charCodeAt(i)) | 0;
  return h;
}
const READ = new Map<number, string[]>();
for (const name of READ_NAMES) {
  const h = nameHash(name);
  READ.set(h, [...(READ.get(h) ?? []), name]);
}

export interface RequestHead {
  /** The received bytes the head is in (the lines below index them), and where it ends. */
  buf: Buffer;
  end: number;
  method: string;
  /** The request target's path (origin form), bytes of `buf`: see `pathOf`. */
  pathStart: number;
  pathEnd: number;
  /** The whole request line including its CRLF, when it goes on as received (origin form); else -1. */
  lineEnd: number;
  host: string;
  /** The headers read but Host and Connection: lower-case names and values, [name, value, ...], in arrival order. */
  headers: string[];
  /**
   * Every header line but Host and Connection, in order, LINE numbers each: name start, colon,
   * value start, value end (whitespace trimmed), the index in `headers` of its name (-1: not
   * read), and 1 when the line is already canonical (lower-case name, ": ", no trailing
   * whitespace: it is copied as it came), else 0.
   */
  lines: number[];
  /** Content-Length of the body (0: none). */
  bodyLength: number;
}

/** True when the bytes so far can start a request line ("GET ", "PATCH ", ...). */
export function startsWithMethod(buf: Uint8Array): boolean {
  for (let i = 0; i < buf.length && i < 8; i++) {
    const b = buf[i]!;
    if (b === 32) return i > 0;
    if (b < 65 || b > 90) return false;
  }
  return buf.length < 8;
}

/** The request target's path as a string (for a span). */
export function pathOf(head: RequestHead): string {
  return head.pathStart < 0 ? "/" : head.buf.toString("latin1", head.pathStart, head.pathEnd);
}

/** Numbers per entry of `RequestHead.lines`. */
const LINE = 6;
const HTTP11 = Buffer.from(" HTTP/1.1\r\n", "latin1");
const HTTP_PREFIX = Buffer.from("http://", "latin1");

/** A byte in ASCII lower case. */
const lower = (b: number): number => (b >= 65 && b <= 90 ? b + 32 : b);

/** The head if the request can take the fast path as far as its own bytes go, else undefined. */
export function parseHead(buf: Buffer, end: number): RequestHead | undefined {
  // The request line (from byte 0): METHOD SP target SP HTTP/1.1 CRLF.
  let sp1 = 0;
  while (sp1 < 8 && buf[sp1] !== 32) sp1++;
  let method: string | undefined;
  for (let m = 0; m < METHODS.length && method === undefined; m++) {
    const mb = METHOD_BYTES[m]!;
    if (mb.length !== sp1) continue;
    let k = 0;
    while (k < mb.length && buf[k] === mb[k]) k++;
    if (k === mb.length) method = METHODS[m];
  }
  if (method === undefined) return undefined;
  const cr = buf.indexOf(13, sp1);
  if (cr < 0 || cr >= end) return undefined;
  const sp2 = cr - 9; // " HTTP/1.1"
  if (sp2 <= sp1 + 1) return undefined;
  for (let k = 0; k < HTTP11.length; k++) if (buf[sp2 + k] !== HTTP11[k]) return undefined;
  for (let k = sp1 + 1; k < sp2; k++) {
    const b = buf[k]!;
    if (b <= 32 || b >= 127) return undefined; // let the regular engine judge odd targets
  }
  let pathStart = sp1 + 1;
  let pathEnd = sp2;
  let authStart = -1;
  let authEnd = -1;
  if (buf[pathStart] !== 47 /* / */) {
    for (let k = 0; k < HTTP_PREFIX.length; k++) if (buf[pathStart + k] !== HTTP_PREFIX[k]) return undefined;
    authStart = pathStart + HTTP_PREFIX.length;
    authEnd = authStart;
    while (authEnd < sp2 && buf[authEnd] !== 47) authEnd++;
    pathStart = authEnd;
    if (pathStart === sp2) pathEnd = pathStart = -1; // "http://host": the path is "/"
  }

  const headers: string[] = [];
  const lines: number[] = [];
  let host: string | undefined;
  let hostStart = 0;
  let hostEnd = 0;
  let bodyLength = -1;
  let pos = cr + 2;
  const stop = end - 2;
  while (pos < stop) {
    // The name: visible ASCII but ":" (a space, tab or other byte: the regular engine judges).
    let h = 0;
    let colon = pos;
    let lowerCase = true;
    for (;;) {
      const b = buf[colon]!;
      if (b === 58) break;
      if (b <= 32 || b >= 127) return undefined;
      const l = lower(b);
      if (l !== b) lowerCase = false;
      h = (Math.imul(h, 31) + l) | 0;
      colon++;
    }
    if (colon === pos) return undefined;
    const eol = buf.indexOf(13, colon);
    if (eol < 0 || eol > stop || buf[eol + 1] !== 10) return undefined;
    let vs = colon + 1;
    while (vs < eol && (buf[vs] === 32 || buf[vs] === 9)) vs++;
    let ve = eol;
    while (ve > vs && (buf[ve - 1] === 32 || buf[ve - 1] === 9)) ve--;
    const canonical = lowerCase && vs === colon + 2 && buf[colon + 1] === 32 && ve === eol;
    let read = -1;
    const candidates = READ.get(h);
    if (candidates) {
      let name: string | undefined;
      for (let k = 0; k < candidates.length && name === undefined; k++) {
        const n = candidates[k]!;
        if (n.length === colon - pos && sameLowerText(buf, pos, n)) name = n;
      }
      if (name !== undefined) {
        switch (name) {
          case "host":
            if (host !== undefined) return undefined;
            host = buf.toString("latin1", vs, ve);
            hostStart = vs;
            hostEnd = ve;
            pos = eol + 2;
            continue;
          case "content-length": {
            if (bodyLength >= 0 || ve === vs || ve - vs > 15) return undefined; // repeated or odd: the regular engine judges
            let n = 0;
            for (let k = vs; k < ve; k++) {
              const d = buf[k]! - 48;
              if (d < 0 || d > 9) return undefined;
              n = n * 10 + d;
            }
            bodyLength = n;
            break;
          }
          case "transfer-encoding":
          case "upgrade":
          case "expect":
            return undefined;
          case "connection":
            if (ve - vs !== 10 || !sameLowerText(buf, vs, "keep-alive")) return undefined;
            pos = eol + 2;
            continue;
        }
        read = headers.length;
        headers.push(name, buf.toString("latin1", vs, ve));
      }
    }
    lines.push(pos, colon, vs, ve, read, canonical ? 1 : 0);
    pos = eol + 2;
  }
  if (!host) return undefined;
  if (authStart >= 0 && !sameLowerBytes(buf, authStart, authEnd, hostStart, hostEnd)) return undefined;
  return {
    buf,
    end,
    method,
    pathStart,
    pathEnd,
    lineEnd: authStart < 0 ? cr + 2 : -1,
    host,
    headers,
    lines,
    bodyLength: Math.max(0, bodyLength),
  };
}

/** buf[start, start + name.length) is `name` (lower case) ignoring ASCII case. */
function sameLowerText(buf: Uint8Array, start: number, name: string): boolean {
  for (let i = 0; i < name.length; i++) if (lower(buf[start + i]!) !== name.charCodeAt(i)) return false;
  return true;
}

/** buf[a, aEnd) and buf[b, bEnd) are equal ignoring ASCII case. */
function sameLowerBytes(buf: Uint8Array, a: number, aEnd: number, b: number, bEnd: number): boolean {
  if (aEnd - a !== bEnd - b) return false;
  for (let i = 0; i < aEnd - a; i++) if (lower(buf[a + i]!) !== lower(buf[b + i]!)) return false;
  return true;
}

/** What goes upstream besides the request's own lines (from a Director; see `writeHead`). */
export interface HeadRewrite {
  /** "host: <endpoint>\r\n". */
  hostLine: Uint8Array;
  /** Read headers not passed on (hop-by-hop, rewritten ones...). */
  drop: ReadonlySet<string>;
  /** Lines after the request's own: bytes kept for the connection, then this request's text (latin1). */
  tail: Uint8Array;
  tailText: string;
  /**
   * With tracing on and no span: the trace decision whose lines are added (fasttrace.ts
   * `writeUntraced`), and the number of the x-request-id it generates; 0 for none.
   */
  untraced: number;
  requestSeq: number;
}

/** Upper bound of the bytes `writeHead` writes. */
export function headBound(head: RequestHead, r: HeadRewrite): number {
  // Each line may gain one byte (": " for ":"); the path of an absolute form is shorter than its target.
  return head.end + head.lines.length / LINE + r.hostLine.length + r.tail.length + r.tailText.length + (r.untraced ? UNTRACED_BOUND : 0) + 32;
}

/**
 * Writes the head sent upstream into `out` from 0 (room: `headBound`): the request line (origin
 * form), the host line, the request's lines but the dropped ones (names in lower case, value
 * after ": "), then the tail and the blank line. Returns its length.
 */
export function writeHead(out: Buffer, head: RequestHead, r: HeadRewrite): number {
  const buf = head.buf;
  let pos: number;
  if (head.lineEnd >= 0) pos = buf.copy(out, 0, 0, head.lineEnd);
  else {
    pos = out.write(head.method, 0, "latin1");
    out[pos++] = 32;
    if (head.pathStart < 0) out[pos++] = 47;
    else pos += buf.copy(out, pos, head.pathStart, head.pathEnd);
    out.set(HTTP11, pos);
    pos += HTTP11.length;
  }
  out.set(r.hostLine, pos);
  pos += r.hostLine.length;
  const lines = head.lines;
  const names = head.headers;
  const drop = r.drop;
  // A run of canonical lines kept in a row is copied at once.
  let runStart = -1;
  let runEnd = -1;
  for (let i = 0; i < lines.length; i += LINE) {
    const read = lines[i + 4]!;
    if (read >= 0 && drop.has(names[read]!)) continue;
    const start = lines[i]!;
    const ve = lines[i + 3]!;
    if (lines[i + 5] === 1) {
      if (runStart >= 0 && runEnd === start) {
        runEnd = ve + 2;
        continue;
      }
      if (runStart >= 0) pos += buf.copy(out, pos, runStart, runEnd);
      runStart = start;
      runEnd = ve + 2;
      continue;
    }
    if (runStart >= 0) {
      pos += buf.copy(out, pos, runStart, runEnd);
      runStart = -1;
    }
    const colon = lines[i + 1]!;
    for (let k = start; k < colon; k++) out[pos++] = lower(buf[k]!);
    out[pos++] = 58;
    out[pos++] = 32;
    pos += buf.copy(out, pos, lines[i + 2]!, ve);
    out[pos++] = 13;
    out[pos++] = 10;
  }
  if (runStart >= 0) pos += buf.copy(out, pos, runStart, runEnd);
  out.set(r.tail, pos);
  pos += r.tail.length;
  if (r.tailText) pos += out.write(r.tailText, pos, "latin1");
  if (r.untraced) pos = writeUntraced(out, pos, r.untraced, r.requestSeq);
  out[pos++] = 13;
  out[pos++] = 10;
  return pos;
}
