import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import type { StatsJson } from "../src/telemetry/statsPage.ts";
import { startEchoApp, tempDir, twoSidecars, viaProxy } from "./helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

async function statsJson(admin: string): Promise<StatsJson> {
  const res = await fetch(`http://${admin}/stats`, { headers: { accept: "application/json" } });
  expect(res.headers.get("content-type")).toContain("application/json");
  return res.json();
}

/** The text of a cell of the services table. */
const cell = (page: Page, service: string, key: string) =>
  page.locator(`#services tr[data-service="${service}"][data-direction="consumer"] td[data-k="${key}"]`).textContent();

describe("/stats", () => {
  const app = startEchoApp("promotion");
  const mesh = twoSidecars(app.port!);
  const admin = mesh.a.addresses.admin!;
  let browser: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    // launchPersistentContext is how Playwright takes a fresh --user-data-dir.
    browser = await chromium.launchPersistentContext(tempDir(), { executablePath: CHROMIUM, headless: true, args: ARGS });
    page = browser.pages()[0] ?? (await browser.newPage());
  });
  afterAll(async () => {
    await browser?.close();
    await mesh.stop();
    app.stop(true);
  });

  test("JSON for Accept: application/json, HTML otherwise", async () => {
    const html = await fetch(`http://${admin}/stats`);
    expect(html.headers.get("content-type")).toContain("text/html");
    expect(await html.text()).toContain("<table id=\"services\">");
    const json = await statsJson(admin);
    expect(json.service).toBe("shop");
    expect(json.clusters.find((c) => c.name === "promotion")!.endpoints[0]).toMatchObject({ address: mesh.b.addresses.provider, state: "UP" });
  });

  test("the page loads, shows what the JSON says, and updates as traffic flows", async () => {
    await page.goto(`http://${admin}/stats?interval=0.3`);
    await page.waitForFunction(() => Number(document.body.dataset.refreshed) >= 1);
    expect(await page.locator("#service").textContent()).toBe("shop 1.0.0");
    expect(await page.locator(`#endpoints tr[data-endpoint="${mesh.b.addresses.provider}"] td[data-k="state"]`).textContent()).toBe("UP");

    for (let i = 0; i < 6; i++) expect((await viaProxy(mesh.proxy, "http://promotion/items")).status).toBe(200);
    expect((await viaProxy(mesh.proxy, "http://nowhere/")).status).toBe(403); // neither a service nor egress

    await page.waitForFunction(
      () => document.querySelector('#services tr[data-service="promotion"] td[data-k="requests"]')?.textContent === "6",
      undefined,
      { timeout: 10_000 },
    );
    const json = await statsJson(admin);
    const promo = json.services.find((s) => s.service === "promotion" && s.direction === "consumer")!;
    const nowhere = json.services.find((s) => s.service === "nowhere")!;
    expect(promo.requests).toBe(6);
    expect(promo.errors).toBe(0);
    expect(nowhere).toMatchObject({ requests: 1, errors: 1, errorRate: 1 });
    expect(await cell(page, "promotion", "requests")).toBe(String(promo.requests));
    expect(await cell(page, "promotion", "errors")).toBe("0");
    expect(await cell(page, "promotion", "errorRate")).toBe("0.0%");
    expect(await cell(page, "nowhere", "errors")).toBe("1");
    expect(await cell(page, "nowhere", "errorRate")).toBe("100.0%");
    expect(Number(await cell(page, "promotion", "rate"))).toBeGreaterThan(0);
    expect(await cell(page, "promotion", "p50")).toBe(String(promo.latencyMs.p50));
    expect(await cell(page, "promotion", "p99")).toBe(String(promo.latencyMs.p99));
    await page.screenshot({ path: process.env.STATS_SCREENSHOT ?? `${tempDir()}/stats.png` });
  });

  test("endpoint state follows ejection and health", async () => {
    const endpoint = mesh.a.clusters.get("promotion")!.endpoints[0]!;
    const state = page.locator(`#endpoints tr[data-endpoint="${endpoint.address}"] td[data-k="state"]`);
    endpoint.ejectedUntil = Date.now() + 60_000; // as outlier detection would
    await page.waitForFunction((a) => document.querySelector(`#endpoints tr[data-endpoint="${a}"] td[data-k="state"]`)?.textContent === "EJECTED", endpoint.address);
    expect(await state.getAttribute("class")).toBe("EJECTED");
    endpoint.ejectedUntil = 0;
    endpoint.status = "DOWN"; // as a health check would
    await page.waitForFunction((a) => document.querySelector(`#endpoints tr[data-endpoint="${a}"] td[data-k="state"]`)?.textContent === "DOWN", endpoint.address);
    expect((await statsJson(admin)).clusters[0]!.endpoints[0]!.state).toBe("DOWN");
    endpoint.status = "UP";
  });
});
