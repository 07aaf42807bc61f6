import { expect, test } from "bun:test";
import { originForm, setForwarded, splitHost, stripHopByHop } from "./http.ts";

test("stripHopByHop removes the fixed set and what Connection names", () => {
  const h = new Headers({
    connection: "close, X-Foo",
    "x-foo": "1",
    "keep-alive": "timeout=5",
    "proxy-authorization": "x",
    te: "trailers",
    upgrade: "websocket",
    "transfer-encoding": "chunked",
    "x-bar": "kept",
  });
  stripHopByHop(h);
  expect([...h.keys()]).toEqual(["x-bar"]);
});

test("setForwarded appends to X-Forwarded-For and keeps existing proto/host", () => {
  const h = new Headers({ "x-forwarded-for": "10.0.0.1", "x-forwarded-proto": "https" });
  setForwarded(h, "127.0.0.1", "shop", "http");
  expect(h.get("x-forwarded-for")).toBe("10.0.0.1, 127.0.0.1");
  expect(h.get("x-forwarded-proto")).toBe("https");
  expect(h.get("x-forwarded-host")).toBe("shop");
});

test("splitHost and originForm", () => {
  expect(splitHost("shop")).toEqual(["shop", undefined]);
  expect(splitHost("shop:8080")).toEqual(["shop", "8080"]);
  expect(splitHost("[::1]:80")).toEqual(["::1", "80"]);
  expect(originForm("http://shop:8080/a/b?x=1")).toBe("/a/b?x=1");
  expect(originForm("http://shop")).toBe("/");
});
