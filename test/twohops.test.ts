import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { curl, startEchoApp, twoSidecars, viaProxy } from "./helpers.ts";

describe("two sidecars: app -> consumer -> provider -> app", () => {
  const app = startEchoApp("promotion");
  const mesh = twoSidecars(app.port!);
  afterAll(async () => {
    await mesh.stop();
    app.stop(true);
  });

  test("curl -x reaches the app through both sidecars", async () => {
    const r = await curl(["-x", mesh.proxy, "http://promotion/items?x=1"]);
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body);
    expect(body.app).toBe("promotion");
    expect(body.path).toBe("/items?x=1");
    expect(body.headers["x-forwarded-host"]).toBe("promotion");
    expect(JSON.parse(body.headers["x-cse-context"])["x-cse-src-microservice"]).toBe("shop");
  });
});
