/**
 * An incremental HTTP/1.x RESPONSE parser for the upstream client: the status line, the
 * headers, and the body framing (Content-Length, chunked, or delimited by close). Body bytes
 * are handed on as views of the received chunks, never copied or decoded.
 *
 * Hand-rolled on purpose (the brief prefers libraries): the maintained npm parser,
 * http-parser-js, decodes header bytes as 7-bit ASCII ("café" in UTF-8 becomes "cC)"), which
 * breaks byte-exact proxying of header values, and it allocates a closure per callback; Node's
 * llhttp is not reachable from Bun. A response parser with these three framings is small.
 */

import { HOP_BY_HOP } from "../http.ts";
import { HOP_LENGTHS, isHopByHopResponseHeader } from "./headers.ts";

/** What the parser hands on when a response's header block is complete. */
export interface ResponseHead {
  status: number;
  statusText: string;
  /** [name, value, name, value, ...]; names as received, values as latin1 strings (empty when the parser is `lean`). */
  headers: string[];
  /** A hop-by-hop header is among them (RFC 9110 §7.6.1: Connection, Keep-Alive, TE, ...). */
  hopByHop: boolean;
  /** The connection may carry another request after this response. */
  keepAlive: boolean;
  /**
   * The header block as received (status line through the blank line) is source[start, end):
   * the received bytes, valid during onHead (`rawOf` makes the view; the fast path passes
   * ranges on without making one).
   */
  source: Uint8Array;
  start: number;
  end: number;
  /** Body framing: "none" (no body), "length", "chunked" or "close" (until the peer closes). */
  framing: "none" | "length" | "chunked" | "close";
  /** For "length" framing. */
  contentLength: number;
}

export interface ParserSink {
  onHead(head: ResponseHead): void;
  /** Body bytes: buf[start, end), received bytes valid during the call (no view is made for it). */
  onBody(buf: Uint8Array, start: number, end: number): void;
  onEnd(): void;
}

/** The header block of `head` as received: a view of the received bytes. */
export function rawOf(head: ResponseHead): Uint8Array {
  return head.source.subarray(head.start, head.end);
}

export class ParseError extends Error {
  override name = "ParseError";
}

const enum S {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailers,
  Close,
}

const CR = 13;
const LF = 10;
/** Longest header block accepted (Node and nginx use 8-16 KB by default; be generous). */
export const MAX_HEAD = 64 * 1024;
const decoder = new TextDecoder("latin1"); // only for short chunk-size lines (ASCII)

/** "HTTP/1.1 " and "content-length" as bytes (the lean parse compares bytes). */
const HTTP11 = Buffer.from("HTTP/1.1 ", "latin1");
const CONTENT_LENGTH = Buffer.from("content-length", "latin1");
/** Hop-by-hop names as bytes, by length. */
const HOP_NAMES = new Map<number, Uint8Array[]>();
for (const n of HOP_BY_HOP) HOP_NAMES.set(n.length, [...(HOP_NAMES.get(n.length) ?? []), Buffer.from(n, "latin1")]);

/** True when buf[pos, pos + word.length) is `word` (lower-case ASCII letters and '-') in any case. */
function sameLower(buf: Uint8Array, pos: number, word: Uint8Array): boolean {
  for (let k = 0; k < word.length; k++) if ((buf[pos + k]! | 0x20) !== word[k]) return false;
  return true;
}

/** Parses successive responses on one connection (one request in flight at a time). */
export class ResponseParser {
  #s = S.Head;
  /** Bytes of an incomplete header block or chunk-size/trailer line. */
  #pending: Uint8Array | null = null;
  #remaining = 0;
  /** The request in flight was HEAD: its response has no body whatever the headers say. */
  noBody = false;
  /**
   * Leave `headers` empty: only the framing and `hopByHop` are read (the fast path passes the
   * head on as received, and reads the lines with `headerLines` in the rare case it must not).
   * A head that can go on as received (HTTP/1.1, one Content-Length, nothing hop-by-hop) is
   * read on its bytes, without a string, and leaves `statusText` empty too.
   */
  lean = false;
  /** The head the lean byte parse fills (its other fields never change). */
  readonly #lean: ResponseHead = {
    status: 0,
    statusText: "",
    headers: [],
    hopByHop: false,
    keepAlive: true,
    source: new Uint8Array(0),
    start: 0,
    end: 0,
    framing: "none",
    contentLength: 0,
  };

  constructor(private readonly sink: ParserSink) {}

  /** True between responses (nothing partial buffered). */
  get idle(): boolean {
    return this.#s === S.Head && this.#pending === null;
  }

  /** True while reading a body that ends when the connection closes. */
  get closeDelimited(): boolean {
    return this.#s === S.Close;
  }

  /** Feeds received bytes; throws ParseError on a malformed response. */
  execute(chunk: Uint8Array): void {
    let buf = chunk;
    let i = 0;
    while (i < buf.length) {
      switch (this.#s) {
        case S.Head: {
          if (this.#pending) {
            buf = concat(this.#pending, buf.subarray(i));
            i = 0;
            this.#pending = null;
          }
          const end = findHeadEnd(buf, i);
          if (end < 0) {
            if (buf.length - i > MAX_HEAD) throw new ParseError("response header block too large");
            this.#pending = buf.slice(i);
            return;
          }
          let next = this.lean ? this.#leanHead(buf, i, end) : -1;
          if (next < 0) next = this.#head(buf, i, end);
          i = next;
          break;
        }
        case S.Length: {
          const n = Math.min(this.#remaining, buf.length - i);
          this.sink.onBody(buf, i, i + n);
          i += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#end();
          break;
        }
        case S.Close:
          this.sink.onBody(buf, i, buf.length);
          return;
        case S.ChunkData: {
          const n = Math.min(this.#remaining, buf.length - i);
          this.sink.onBody(buf, i, i + n);
          i += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#s = S.ChunkEnd;
          break;
        }
        default: {
          // A line: chunk size, the CRLF after chunk data, or a trailer.
          const lf = buf.indexOf(LF, i);
          if (lf < 0) {
            const rest = buf.subarray(i);
            this.#pending = this.#pending ? concat(this.#pending, rest) : rest.slice();
            if (this.#pending.length > MAX_HEAD) throw new ParseError("chunk line too long");
            return;
          }
          let line = buf.subarray(i, lf);
          if (this.#pending) {
            line = concat(this.#pending, line);
            this.#pending = null;
          }
          if (line.length && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
          i = lf + 1;
          this.#line(line);
        }
      }
    }
  }

  /** The connection closed: ends a close-delimited body; throws if a response was cut short. */
  finish(): void {
    if (this.#s === S.Close) return this.#end();
    if (!this.idle) throw new ParseError("connection closed in the middle of a response");
  }

  #line(line: Uint8Array): void {
    switch (this.#s) {
      case S.ChunkSize: {
        const text = decoder.decode(line);
        const semi = text.indexOf(";"); // chunk extensions are ignored
        const hex = (semi < 0 ? text : text.slice(0, semi)).trim();
        if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw new ParseError(`bad chunk size "${text}"`);
        const size = parseInt(hex, 16);
        if (size === 0) this.#s = S.Trailers;
        else {
          this.#remaining = size;
          this.#s = S.ChunkData;
        }
        return;
      }
      case S.ChunkEnd:
        if (line.length !== 0) throw new ParseError("chunk data longer than its size");
        this.#s = S.ChunkSize;
        return;
      case S.Trailers:
        // Trailers are hop-by-hop for this proxy (Trailer is not forwarded): skip them.
        if (line.length === 0) this.#end();
        return;
    }
  }

  #end(): void {
    this.#s = S.Head;
    this.#remaining = 0;
    this.sink.onEnd();
  }

  /**
   * The lean parse of the common head, on bytes: "HTTP/1.1 NNN", a final status, one
   * Content-Length, no hop-by-hop header. Returns `end`, or -1 for anything
   * else (the string parse below then reads it, and reports errors). Measured: the string parse
   * was 0.3-0.7 µs of the fast path's ~5 µs of user time per request (bench/NOTES.md).
   */
  #leanHead(buf: Uint8Array, start: number, end: number): number {
    for (let k = 0; k < 9; k++) if (buf[start + k] !== HTTP11[k]) return -1;
    const d0 = buf[start + 9]! - 48;
    const d1 = buf[start + 10]! - 48;
    const d2 = buf[start + 11]! - 48;
    const after = buf[start + 12];
    if (d0 < 2 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9 || (after !== 32 && after !== CR)) return -1;
    const status = d0 * 100 + d1 * 10 + d2;
    let contentLength = -1;
    let pos = buf.indexOf(LF, start) + 1;
    const stop = end - 2;
    while (pos < stop) {
      const first = buf[pos];
      if (first === 32 || first === 9) return -1; // a folded line: the string parse judges
      const nl = buf.indexOf(CR, pos);
      const colon = buf.indexOf(58, pos);
      if (nl < 0 || nl >= end || colon <= pos || colon > nl) return -1;
      const length = colon - pos;
      if (length === 14 && sameLower(buf, pos, CONTENT_LENGTH)) {
        if (contentLength >= 0) return -1;
        let p = colon + 1;
        while (buf[p] === 32 || buf[p] === 9) p++;
        let q = nl;
        while (q > p && (buf[q - 1] === 32 || buf[q - 1] === 9)) q--;
        if (q === p || q - p > 15) return -1;
        let n = 0;
        for (let k = p; k < q; k++) {
          const d = buf[k]! - 48;
          if (d < 0 || d > 9) return -1;
          n = n * 10 + d;
        }
        contentLength = n;
      } else if (HOP_LENGTHS.has(length)) {
        // A hop-by-hop name (Transfer-Encoding and Connection among them): the string parse.
        for (const name of HOP_NAMES.get(length)!) if (sameLower(buf, pos, name)) return -1;
      }
      pos = nl + 2;
    }
    if (contentLength < 0) return -1;
    // One head object per parser in lean mode, filled anew (a sink reads it during onHead only).
    const head = this.#lean;
    head.status = status;
    head.source = buf;
    head.start = start;
    head.end = end;
    head.framing = this.#framing(status, false, contentLength);
    head.contentLength = contentLength;
    this.#start(head);
    return end;
  }

  /** Parses the header block buf[start, end) (end: index after CRLFCRLF); returns `end`. */
  #head(buf: Uint8Array, start: number, end: number): number {
    // latin1: one char per byte, so header values pass on byte for byte (UTF-8 included).
    const text = (buf instanceof Buffer ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)).toString("latin1", start, end);
    const eol = text.indexOf("\r\n");
    const statusLine = text.slice(0, eol);
    // "HTTP/1.1 200 OK": the reason phrase is optional.
    if (!statusLine.startsWith("HTTP/1.") || statusLine.charCodeAt(8) !== 32) {
      throw new ParseError(`bad status line "${statusLine.slice(0, 40)}"`);
    }
    const http10 = statusLine.charCodeAt(7) === 48; // "HTTP/1.0"
    const status = Number(statusLine.slice(9, 12));
    if (!(status >= 100 && status <= 999)) throw new ParseError(`bad status "${statusLine.slice(0, 40)}"`);
    const statusText = statusLine.length > 13 ? statusLine.slice(13) : "";

    const headers: string[] = [];
    const lean = this.lean;
    let hopByHop = false;
    let contentLength = -1;
    let chunked = false;
    let close = http10;
    let pos = eol + 2;
    const stop = text.length - 2;
    while (pos < stop) {
      let nl = text.indexOf("\r\n", pos);
      if (nl < 0) nl = stop;
      const colon = text.indexOf(":", pos);
      if (colon < 0 || colon > nl || colon === pos) throw new ParseError(`bad header line "${text.slice(pos, Math.min(nl, pos + 40))}"`);
      const length = colon - pos;
      // Only the framing (content-length: 14; transfer-encoding and connection are hop-by-hop)
      // and hop-by-hop headers matter here; compare by length first (cheap).
      if (lean && length !== 14 && !HOP_LENGTHS.has(length)) {
        pos = nl + 2;
        continue;
      }
      const name = text.slice(pos, colon);
      const value = text.slice(colon + 1, nl).trim();
      if (!lean) headers.push(name, value);
      if (isHopByHopResponseHeader(name)) hopByHop = true;
      switch (length) {
        case 14:
          if (name.toLowerCase() === "content-length") {
            const n = Number(value);
            if (!/^\d+$/.test(value) || (contentLength >= 0 && contentLength !== n)) {
              throw new ParseError(`bad content-length "${value}"`);
            }
            contentLength = n;
          }
          break;
        case 17:
          if (name.toLowerCase() === "transfer-encoding") {
            const v = value.toLowerCase();
            chunked = v === "chunked" || v.endsWith(",chunked") || v.endsWith(" chunked");
            if (!chunked) close = true; // unknown coding: read until close (RFC 9112 §6.3)
          }
          break;
        case 10:
          if (name.toLowerCase() === "connection") {
            const v = value.toLowerCase();
            if (v.includes("close")) close = true;
            else if (http10 && v.includes("keep-alive")) close = false;
          }
          break;
      }
      pos = nl + 2;
    }

    if (status < 200) {
      // An interim response (100 Continue, 103 Early Hints): no body; the real one follows.
      this.sink.onHead({ status, statusText, headers, hopByHop, source: buf, start, end, keepAlive: true, framing: "none", contentLength: 0 });
      return end;
    }
    const framing = this.#framing(status, chunked, contentLength);
    if (framing === "close") close = true;
    this.#start({ status, statusText, headers, hopByHop, source: buf, start, end, keepAlive: !close, framing, contentLength: Math.max(0, contentLength) });
    return end;
  }

  /** The body framing of a final response (RFC 9112 §6.3); contentLength -1: none given. */
  #framing(status: number, chunked: boolean, contentLength: number): ResponseHead["framing"] {
    if (this.noBody || status === 204 || status === 304) return "none";
    if (chunked) return "chunked"; // chunked wins over Content-Length
    if (contentLength >= 0) return contentLength === 0 ? "none" : "length";
    return "close";
  }

  /** Hands a final response's head on, then reads its body as it is framed. */
  #start(head: ResponseHead): void {
    this.sink.onHead(head);
    switch (head.framing) {
      case "none":
        this.#end();
        break;
      case "length":
        this.#remaining = head.contentLength;
        this.#s = S.Length;
        break;
      case "chunked":
        this.#s = S.ChunkSize;
        break;
      case "close":
        this.#s = S.Close;
    }
  }
}

/** The header lines of a head as [name, value, ...] (for a `lean` parser's head). */
export function headerLines(head: ResponseHead): string[] {
  const src = head.source;
  const text = Buffer.from(src.buffer, src.byteOffset, src.byteLength).toString("latin1", head.start, head.end);
  const out: string[] = [];
  let pos = text.indexOf("\r\n") + 2;
  const stop = text.length - 2;
  while (pos < stop) {
    let nl = text.indexOf("\r\n", pos);
    if (nl < 0) nl = stop;
    const colon = text.indexOf(":", pos);
    out.push(text.slice(pos, colon), text.slice(colon + 1, nl).trim());
    pos = nl + 2;
  }
  return out;
}

/** Index just past the first CRLFCRLF at or after `from`, or -1. */
export function findHeadEnd(buf: Uint8Array, from: number): number {
  // CRLF line endings only: every server this proxies to sends them (RFC 9112 §2.2 lets a
  // recipient accept bare LF; this one does not).
  let i = buf.indexOf(LF, from);
  while (i >= 0 && i + 2 < buf.length) {
    if (buf[i + 1] === CR && buf[i + 2] === LF) return i + 3;
    i = buf.indexOf(LF, i + 1);
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
