import { describe, expect, test } from "bun:test";
import { headerLines, ParseError, rawOf, ResponseParser, type ResponseHead } from "./parser.ts";

/** Feeds `parts` to a parser and records what it reported. */
function parse(parts: (string | Uint8Array)[], opts: { noBody?: boolean; finish?: boolean; lean?: boolean } = {}) {
  const heads: ResponseHead[] = [];
  const bodies: string[] = [];
  let body: number[] = [];
  let ends = 0;
  const p = new ResponseParser({
    onHead: (h) => void heads.push(h),
    onBody: (b, s, e) => void body.push(...b.subarray(s, e)),
    onEnd: () => {
      ends++;
      bodies.push(Buffer.from(body).toString("latin1"));
      body = [];
    },
  });
  p.noBody = opts.noBody ?? false;
  p.lean = opts.lean ?? false;
  for (const part of parts) p.execute(typeof part === "string" ? Buffer.from(part, "latin1") : part);
  if (opts.finish) p.finish();
  return { heads, bodies, ends, parser: p };
}

/** Splits a string into pieces of `n` bytes. */
const pieces = (s: string, n: number) => Array.from({ length: Math.ceil(s.length / n) }, (_, i) => s.slice(i * n, i * n + n));

describe("ResponseParser", () => {
  test("status line, headers as received, Content-Length body", () => {
    const r = parse(["HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-A:  b c \r\n\r\nhello"]);
    expect(r.heads[0]!.status).toBe(201);
    expect(r.heads[0]!.statusText).toBe("Created");
    expect(r.heads[0]!.headers).toEqual(["Content-Type", "text/plain", "Content-Length", "5", "X-A", "b c"]);
    expect(r.heads[0]!.keepAlive).toBe(true);
    expect(r.heads[0]!.framing).toBe("length");
    expect(r.bodies).toEqual(["hello"]);
  });

  test("a response split at every byte parses the same", () => {
    const raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
    const r = parse(pieces(raw, 1));
    expect(r.heads[0]!.framing).toBe("chunked");
    expect(r.bodies).toEqual(["hello world"]);
    expect(r.parser.idle).toBe(true);
  });

  test("chunked edge cases: upper-case hex, extensions, empty trailers, big chunk", () => {
    const big = "x".repeat(0x1a2b);
    const r = parse([`HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n1A2B\r\n${big}\r\n3 ; name="v"\r\nabc\r\n0\r\n\r\n`]);
    expect(r.bodies).toEqual([big + "abc"]);
  });

  test("bad chunk size and chunk longer than declared are errors", () => {
    expect(() => parse(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])).toThrow(ParseError);
    expect(() => parse(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n"])).toThrow(ParseError);
  });

  test("chunked wins over Content-Length", () => {
    const r = parse(["HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"]);
    expect(r.bodies).toEqual(["ok"]);
  });

  test("conflicting Content-Length values are refused; equal duplicates are fine", () => {
    expect(() => parse(["HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"])).toThrow(ParseError);
    expect(parse(["HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"]).bodies).toEqual(["ok"]);
  });

  test("pipelined responses in one chunk", () => {
    const r = parse([
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\ndd",
    ]);
    expect(r.heads.map((h) => h.status)).toEqual([200, 204, 200, 200]);
    expect(r.bodies).toEqual(["a", "", "c", "dd"]);
  });

  test("no body for HEAD, 204 and 304 whatever the headers say", () => {
    expect(parse(["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"], { noBody: true }).ends).toBe(1);
    expect(parse(["HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"]).ends).toBe(1);
  });

  test("interim 1xx responses are reported and the final one follows", () => {
    const r = parse(["HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]);
    expect(r.heads.map((h) => h.status)).toEqual([100, 103, 200]);
    expect(r.ends).toBe(1);
    expect(r.bodies).toEqual(["ok"]);
  });

  test("a body delimited by close ends at finish(), and the connection is not kept", () => {
    const r = parse(["HTTP/1.1 200 OK\r\n\r\npart one, ", "part two"], { finish: true });
    expect(r.heads[0]!.framing).toBe("close");
    expect(r.heads[0]!.keepAlive).toBe(false);
    expect(r.bodies).toEqual(["part one, part two"]);
  });

  test("Connection: close and HTTP/1.0 without keep-alive are not kept alive", () => {
    expect(parse(["HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"]).heads[0]!.keepAlive).toBe(false);
    expect(parse(["HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"]).heads[0]!.keepAlive).toBe(false);
    expect(parse(["HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"]).heads[0]!.keepAlive).toBe(true);
  });

  test("a connection closed mid-response is an error", () => {
    expect(() => parse(["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], { finish: true })).toThrow(ParseError);
    expect(() => parse(["HTTP/1.1 200 OK\r\nContent-Le"], { finish: true })).toThrow(ParseError);
  });

  test("header values keep their bytes (UTF-8 passes as latin1 chars)", () => {
    const bytes = Buffer.concat([Buffer.from("HTTP/1.1 200 OK\r\nX-Name: caf"), Buffer.from([0xc3, 0xa9]), Buffer.from("\r\nContent-Length: 0\r\n\r\n")]);
    const r = parse([bytes]);
    expect(Buffer.from(r.heads[0]!.headers[1]!, "latin1")).toEqual(Buffer.from("café"));
  });

  test("garbage and oversize header blocks are refused", () => {
    expect(() => parse(["SSH-2.0-OpenSSH\r\n\r\n"])).toThrow(ParseError);
    expect(() => parse(["HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"])).toThrow(ParseError);
    expect(() => parse(["HTTP/1.1 200 OK\r\nX: " + "a".repeat(70_000)])).toThrow(ParseError);
  });

  test("body bytes are passed through untouched (binary)", () => {
    const body = new Uint8Array(256).map((_, i) => i);
    const head = Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 256\r\n\r\n");
    const got: number[] = [];
    const p = new ResponseParser({ onHead() {}, onBody: (b, s, e) => void got.push(...b.subarray(s, e)), onEnd() {} });
    p.execute(Buffer.concat([head, body.subarray(0, 100)]));
    p.execute(body.subarray(100));
    expect(new Uint8Array(got)).toEqual(body);
  });

  test("lean: framing and hop-by-hop only, the raw head as received; headerLines reads it when needed", () => {
    const head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nX-Long-Header-Name: v\r\n\r\n";
    const lean = parse([head + "ok"], { lean: true });
    expect(lean.heads[0]).toMatchObject({ status: 200, headers: [], hopByHop: false, framing: "length" });
    expect(Buffer.from(rawOf(lean.heads[0]!)).toString("latin1")).toBe(head);
    expect(lean.bodies).toEqual(["ok"]);
    for (const hop of ["Connection: close", "Keep-Alive: timeout=5", "TE: trailers", "Upgrade: h2c", "Proxy-Connection: x"]) {
      const r = parse([`HTTP/1.1 200 OK\r\n${hop}\r\nContent-Length: 0\r\n\r\n`], { lean: true });
      expect(r.heads[0]!.hopByHop).toBe(true);
    }
    const chunked = parse(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"], { lean: true });
    expect(chunked.heads[0]).toMatchObject({ framing: "chunked", hopByHop: true });
    expect(chunked.bodies).toEqual(["ok"]);
    expect(headerLines(lean.heads[0]!)).toEqual(["Content-Type", "text/plain", "Content-Length", "2", "X-Long-Header-Name", "v"]);
    // Not lean: every header, and the same flag.
    expect(parse([head + "ok"]).heads[0]).toMatchObject({ hopByHop: false, headers: ["Content-Type", "text/plain", "Content-Length", "2", "X-Long-Header-Name", "v"] });
  });

  test("lean reads the same status, framing, keep-alive and hop-by-hop flag as the full parse, for every kind of head", () => {
    const heads = [
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\ncontent-length:2\r\n\r\nok",
      "HTTP/1.1 201\r\nCONTENT-LENGTH: 2 \r\n\r\nok",
      "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nExpires: 0\r\nETag: x\r\nContent-Length: 2\r\n\r\nok", // hop-sized names, not hop-by-hop
      "HTTP/1.1 200 OK\r\nX-Content-Length: 9\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 20\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n2\r\nok\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nok", // close-delimited
      "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ];
    for (const text of heads) {
      for (const noBody of [false, true]) {
        // A HEAD's response: the last head alone (no body follows it).
        const input = noBody ? text.slice(0, text.indexOf("\r\n\r\n", text.lastIndexOf("HTTP/1.")) + 4) : text;
        const full = parse([input], { noBody, finish: true });
        const lean = parse([input], { noBody, finish: true, lean: true });
        const pick = (h: ResponseHead) => ({ status: h.status, framing: h.framing, keepAlive: h.keepAlive, hopByHop: h.hopByHop, contentLength: h.contentLength, raw: Buffer.from(rawOf(h)).toString("latin1") });
        expect(lean.heads.map(pick)).toEqual(full.heads.map(pick));
        expect(lean.bodies).toEqual(full.bodies);
      }
    }
    // Malformed heads are still refused (by the full parse the lean one hands them to).
    expect(() => parse(["HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"], { lean: true })).toThrow(ParseError);
    expect(() => parse(["HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"], { lean: true })).toThrow(ParseError);
  });
});
