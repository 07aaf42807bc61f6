import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { parse } from "yaml";
import { importEnvoy } from "../src/config/compat/envoy.ts";
import { curl, ROOT, startEchoApp, startSidecar } from "./helpers.ts";

describe("an Envoy front-proxy config run by mesher in edge mode", async () => {
  const service1 = startEchoApp("service1");
  const service2 = startEchoApp("service2");
  const yaml = (await Bun.file(join(ROOT, "test/fixtures/envoy/front-proxy.yaml")).text())
    .replaceAll("SERVICE1_PORT", String(service1.port))
    .replaceAll("SERVICE2_PORT", String(service2.port));
  const gw = startSidecar({ service: { name: "front-envoy" }, ...importEnvoy(parse(yaml), "front-proxy.yaml") });
  const edge = `http://${gw.addresses.edge}`;
  afterAll(async () => {
    await gw.stop();
    service1.stop(true);
    service2.stop(true);
  });

  test("/service/1 and /service/2 reach the two apps", async () => {
    const one = await curl([`${edge}/service/1`]);
    expect(one.status).toBe(200);
    expect(JSON.parse(one.body)).toMatchObject({ app: "service1", path: "/service/1" });
    const two = await curl([`${edge}/service/2/items?x=1`]);
    expect(JSON.parse(two.body)).toMatchObject({ app: "service2", path: "/service/2/items?x=1" });
  });

  test("other paths get the 404 JSON error", async () => {
    const r = await curl([`${edge}/service/3`]);
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body).error.code).toBe("no_route");
  });

  test("Envoy's admin address became mesher's admin listener", async () => {
    const r = await curl([`http://${gw.addresses.admin}/ready`]);
    expect(r.body.trim()).toBe("LIVE");
  });
});
