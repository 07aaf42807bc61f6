import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import type { Ctx } from "../../pipeline/types.ts";
import { compileMatch, compileValue, requestView } from "./match.ts";
import { MatchSchema, ValueMatchSchema } from "./schema.ts";

const value = (m: v.InferInput<typeof ValueMatchSchema>) => compileValue(v.parse(ValueMatchSchema, m));
const match = (m: v.InferInput<typeof MatchSchema>) => compileMatch(v.parse(MatchSchema, m));

function ctx(init: { path?: string; method?: string; headers?: Record<string, string>; source?: Ctx["source"] } = {}): Ctx {
  return {
    path: init.path ?? "/",
    method: init.method ?? "GET",
    headers: new Headers(init.headers),
    source: init.source,
  } as Ctx;
}
const ok = (m: v.InferInput<typeof MatchSchema>, c: Ctx) => match(m).test(requestView(c));

describe("value operators", () => {
  test("exact, prefix, suffix, contains, noEqu", () => {
    expect(value({ exact: "bar" })("bar")).toBe(true);
    expect(value({ exact: "bar" })("barx")).toBe(false);
    expect(value({ prefix: "ba" })("bar")).toBe(true);
    expect(value({ prefix: "ba" })("xbar")).toBe(false);
    expect(value({ suffix: "ar" })("bar")).toBe(true);
    expect(value({ contains: "inu" })("linux")).toBe(true);
    expect(value({ contains: "win" })("linux")).toBe(false);
    expect(value({ noEqu: "a" })("b")).toBe(true);
    expect(value({ noEqu: "a" })("a")).toBe(false);
  });

  test("regex is anchored: the whole value must match", () => {
    expect(value({ regex: "\\d+" })("123")).toBe(true);
    expect(value({ regex: "\\d+" })("a123")).toBe(false);
    expect(value({ regex: "^(.*?;)?(user=jason)(;.*)?$" })("a=1; user=jason; b=2")).toBe(false);
    expect(value({ regex: "^(.*?;)?( ?user=jason)(;.*)?$" })("a=1; user=jason; b=2")).toBe(true);
  });

  test("integer comparisons; a non-integer value matches none", () => {
    expect(value({ greater: 10 })("11")).toBe(true);
    expect(value({ greater: 10 })("10")).toBe(false);
    expect(value({ less: "10" })("9")).toBe(true);
    expect(value({ noLess: 10 })("10")).toBe(true);
    expect(value({ noGreater: 10 })("11")).toBe(false);
    expect(value({ greater: 1 })("2.5")).toBe(false);
    expect(value({ greater: 1 })(null)).toBe(false);
  });

  test("all operators of one header must hold", () => {
    const t = value({ prefix: "a", suffix: "z", noEqu: "az" });
    expect(t("abz")).toBe(true);
    expect(t("az")).toBe(false);
    expect(t("abc")).toBe(false);
  });

  test("caseInsensitive, as a boolean or Mesher's string", () => {
    expect(value({ exact: "Bar", caseInsensitive: true })("bAR")).toBe(true);
    expect(value({ exact: "Bar", caseInsensitive: "true" })("bAR")).toBe(true);
    expect(value({ regex: "ba+r", caseInsensitive: "true" })("BAAR")).toBe(true);
    expect(value({ exact: "Bar" })("bar")).toBe(false);
  });

  test("present, absent, {} means present, missing reads as empty", () => {
    expect(value({ present: true })("")).toBe(true);
    expect(value({ present: true })(null)).toBe(false);
    expect(value({ present: false })(null)).toBe(true);
    expect(value({})("x")).toBe(true);
    expect(value({})(null)).toBe(false);
    expect(value({ exact: "" })(null)).toBe(true);
    expect(value({ noEqu: "x" })(null)).toBe(true);
  });

  test("numbers written in YAML compare as text", () => {
    expect(value({ exact: 1 })("1")).toBe(true);
  });
});

describe("match", () => {
  test("an empty match matches everything", () => {
    expect(ok({}, ctx())).toBe(true);
  });

  test("header names are case-insensitive", () => {
    expect(ok({ headers: { "X-User": { exact: "jason" } } }, ctx({ headers: { "x-user": "jason" } }))).toBe(true);
    expect(ok({ headers: { cookie: { regex: ".*user=jason.*" } } }, ctx({ headers: { Cookie: "a=1; user=jason" } }))).toBe(true);
  });

  test("every header must match", () => {
    const m = { headers: { a: { exact: "1" }, b: { exact: "2" } } };
    expect(ok(m, ctx({ headers: { a: "1", b: "2" } }))).toBe(true);
    expect(ok(m, ctx({ headers: { a: "1" } }))).toBe(false);
  });

  test("withoutHeaders negates", () => {
    const m = { withoutHeaders: { "x-canary": {} } };
    expect(ok(m, ctx())).toBe(true);
    expect(ok(m, ctx({ headers: { "x-canary": "1" } }))).toBe(false);
  });

  test("source and sourceTags (version and app built in)", () => {
    const source = { name: "shop", version: "1.0", app: "demo", tags: { zone: "a" } };
    expect(ok({ source: "shop" }, ctx({ source }))).toBe(true);
    expect(ok({ source: "cart" }, ctx({ source }))).toBe(false);
    expect(ok({ source: "shop" }, ctx())).toBe(false);
    expect(ok({ sourceTags: { version: "1.0", app: "demo", zone: "a" } }, ctx({ source }))).toBe(true);
    expect(ok({ sourceTags: { zone: "b" } }, ctx({ source }))).toBe(false);
  });

  test("path exact, prefix, regex, caseInsensitive; the query is not part of the path", () => {
    expect(ok({ path: { exact: "/a" } }, ctx({ path: "/a?x=1" }))).toBe(true);
    expect(ok({ path: { exact: "/a" } }, ctx({ path: "/ab" }))).toBe(false);
    expect(ok({ path: { prefix: "/api/" } }, ctx({ path: "/api/x" }))).toBe(true);
    expect(ok({ path: { prefix: "/api/" } }, ctx({ path: "/API/x" }))).toBe(false);
    expect(ok({ path: { prefix: "/api/", caseInsensitive: true } }, ctx({ path: "/API/x" }))).toBe(true);
    expect(ok({ path: { regex: "/items/\\d+" } }, ctx({ path: "/items/12" }))).toBe(true);
    expect(ok({ path: { regex: "/items/\\d+" } }, ctx({ path: "/items/12/x" }))).toBe(false);
  });

  test("method: one or a list, any case", () => {
    expect(ok({ method: "post" }, ctx({ method: "POST" }))).toBe(true);
    expect(ok({ method: ["GET", "HEAD"] }, ctx({ method: "HEAD" }))).toBe(true);
    expect(ok({ method: ["GET", "HEAD"] }, ctx({ method: "POST" }))).toBe(false);
  });

  test("query parameters", () => {
    expect(ok({ query: { debug: { exact: "1" } } }, ctx({ path: "/a?debug=1&x=2" }))).toBe(true);
    expect(ok({ query: { debug: { exact: "1" } } }, ctx({ path: "/a?debug=0" }))).toBe(false);
    expect(ok({ query: { debug: { present: true } } }, ctx({ path: "/a" }))).toBe(false);
  });

  test("a bad regex is a schema error, not a crash at request time", () => {
    expect(v.safeParse(MatchSchema, { headers: { a: { regex: "(" } } }).success).toBe(false);
    expect(v.safeParse(MatchSchema, { path: { exact: "/a", prefix: "/" } }).success).toBe(false);
  });
});
