import { expect, test } from "bun:test";
import { ClusterManager } from "./clusters.ts";

test("origins merge into one cluster and endpoint objects keep their state", () => {
  const m = new ClusterManager();
  m.setOrigin("static", { shop: [{ address: "a:1" }] });
  m.setEndpoints("file", "shop", [{ address: "b:1", tags: { version: "v2" } }, { address: "a:1" }]);
  const shop = m.get("shop")!;
  expect(shop.endpoints.map((e) => e.address)).toEqual(["a:1", "b:1"]);
  shop.endpoints[0]!.ejectedUntil = 42;
  const rev = shop.revision;
  m.setOrigin("static", { shop: [{ address: "a:1", tags: { version: "v1" } }] });
  expect(shop.revision).toBeGreaterThan(rev);
  expect(shop.endpoints[0]!.ejectedUntil).toBe(42);
  expect(shop.endpoints[0]!.tags).toEqual({ version: "v1" });
});

test("a service no origin declares any more disappears", () => {
  const m = new ClusterManager();
  m.setOrigin("static", { shop: [{ address: "a:1" }], cart: [] });
  expect(m.names()).toEqual(["cart", "shop"]);
  m.setOrigin("static", { shop: [{ address: "a:1" }] });
  expect(m.names()).toEqual(["shop"]);
});

test("service names are found ignoring case, exact spelling first", () => {
  const m = new ClusterManager();
  m.setOrigin("static", { ShoppingCart: [{ address: "a:1" }], cart: [{ address: "b:1" }] });
  expect(m.canonicalName("shoppingcart")).toBe("ShoppingCart");
  expect(m.canonicalName("SHOPPINGCART")).toBe("ShoppingCart");
  expect(m.canonicalName("cart")).toBe("cart");
  expect(m.canonicalName("nosuch")).toBeUndefined();
});
