import { describe, expect, test } from "bun:test";
import { headBound, parseHead, pathOf, writeHead, type HeadRewrite } from "./fasthead.ts";
import { TRACE_DENY } from "./fasttrace.ts";

const parse = (text: string) => {
  const buf = Buffer.from(text, "latin1");
  return parseHead(buf, buf.indexOf("\r\n\r\n") + 4);
};

/** The head written upstream for `text` with the consumer's kind of rewrite. */
function rewrite(text: string, r: Partial<HeadRewrite> = {}): string {
  const head = parse(text);
  if (!head) throw new Error("not taken");
  const full: HeadRewrite = {
    hostLine: Buffer.from("host: 10.0.0.1:80\r\n"),
    drop: new Set(["host", "connection", "keep-alive", "te", "x-forwarded-for", "x-mesher-via"]),
    tail: Buffer.from("x-forwarded-for: 1.2.3.4\r\n"),
    tailText: "",
    untraced: TRACE_DENY,
    requestSeq: 0,
    ...r,
  };
  const out = Buffer.alloc(headBound(head, full));
  const n = writeHead(out, head, full);
  return out.toString("latin1", 0, n);
}

describe("fast path request head", () => {
  test("reads the request line, Host, Content-Length and the headers the fast path needs; other lines stay bytes", () => {
    const head = parse(
      "POST /items?id=1 HTTP/1.1\r\nHost: Shop:8080\r\nUser-Agent:  curl/8 \r\nContent-Length: 12\r\nX-Custom: a\r\nX-Forwarded-For: 9.9.9.9\r\nTraceparent: 00-x\r\n\r\nbody...",
    )!;
    expect(head).toMatchObject({ method: "POST", host: "Shop:8080", bodyLength: 12, lineEnd: 27 });
    expect(pathOf(head)).toBe("/items?id=1");
    // Names in lower case, values trimmed; X-Custom is not read (it goes on as bytes).
    expect(head.headers).toEqual(["user-agent", "curl/8", "content-length", "12", "x-forwarded-for", "9.9.9.9", "traceparent", "00-x"]);
  });

  test("the head upstream: request line as received, the host line, the request's lines but the dropped ones (names lower-cased, ': '), then the tail", () => {
    const out = rewrite(
      "GET /a HTTP/1.1\r\nHost: shop\r\naccept: */*\r\nx-one: 1\r\nConnection: keep-alive\r\nX-Two:two  \r\nx-three:   3\r\nx-forwarded-for: 5.5.5.5\r\nx-four: 4\r\nx-five: 5\r\n\r\n",
    );
    expect(out).toBe(
      "GET /a HTTP/1.1\r\nhost: 10.0.0.1:80\r\naccept: */*\r\nx-one: 1\r\nx-two: two\r\nx-three: 3\r\nx-four: 4\r\nx-five: 5\r\n" +
        "x-forwarded-for: 1.2.3.4\r\nx-b3-sampled: 0\r\n\r\n",
    );
  });

  test("values pass byte for byte (UTF-8 and latin1 alike), with an empty value kept", () => {
    const out = rewrite("GET / HTTP/1.1\r\nHost: shop\r\nX-Name: café ü\r\nx-empty:\r\n\r\n", { untraced: 0 });
    expect(out).toBe("GET / HTTP/1.1\r\nhost: 10.0.0.1:80\r\nx-name: café ü\r\nx-empty: \r\nx-forwarded-for: 1.2.3.4\r\n\r\n");
    const utf8 = Buffer.from("GET / HTTP/1.1\r\nHost: shop\r\nx-name: café\r\n\r\n", "utf8");
    const head = parseHead(utf8, utf8.length)!;
    const o = Buffer.alloc(512);
    const n = writeHead(o, head, { hostLine: new Uint8Array(0), drop: new Set(["host"]), tail: new Uint8Array(0), tailText: "", untraced: 0, requestSeq: 0 });
    expect(o.subarray(0, n).toString("utf8")).toBe("GET / HTTP/1.1\r\nx-name: café\r\n\r\n");
  });

  test("an absolute-form target (a client behind HTTP_PROXY) goes on in origin form", () => {
    expect(rewrite("GET http://shop:8080/x/y?q=1 HTTP/1.1\r\nHost: SHOP:8080\r\n\r\n", { untraced: 0 })).toBe(
      "GET /x/y?q=1 HTTP/1.1\r\nhost: 10.0.0.1:80\r\nx-forwarded-for: 1.2.3.4\r\n\r\n",
    );
    const bare = parse("DELETE http://shop HTTP/1.1\r\nHost: shop\r\n\r\n")!;
    expect(pathOf(bare)).toBe("/");
    expect(rewrite("DELETE http://shop HTTP/1.1\r\nHost: shop\r\n\r\n", { untraced: 0 })).toStartWith("DELETE / HTTP/1.1\r\nhost: 10.0.0.1:80\r\n");
  });

  test("anything unusual is left to the regular engine", () => {
    const refused = [
      "get / HTTP/1.1\r\nHost: a\r\n\r\n", // method case
      "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
      "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
      "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", // two spaces
      "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET https://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n", // authority is not Host
      "GET / HTTP/1.1\r\n\r\n", // no Host
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\n: empty name\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nNo-Colon\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nx-caf\xe9: 1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nx-a: 1\rx\r\n\r\n", // a bare CR
    ];
    for (const text of refused) expect({ text, head: parse(text) }).toEqual({ text, head: undefined });
    // Connection: keep-alive (any case) is fine, and not passed on.
    expect(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n")).toBeDefined();
  });
});
