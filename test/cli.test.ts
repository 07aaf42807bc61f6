/**
 * The command line and config loading as a user meets them: files in several formats,
 * errors named by field path, refusal before any port opens.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CLI, run, spawnMesher, startEchoApp, tempDir, curl, closedPort } from "./helpers.ts";

async function portIsOpen(port: number): Promise<boolean> {
  try {
    await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {}, open(s) { s.end(); } } });
    return true;
  } catch {
    return false;
  }
}

describe("mesher check", () => {
  test("a bad config is refused with every problem: path, value, expectation; no port opens", async () => {
    const port = closedPort();
    const dir = tempDir({
      "bad.config.ts": `
        import { defineConfig } from "mesher";
        export default defineConfig({
          service: { name: "shop", ports: { http: 99999 } },
          listen: { consumer: "127.0.0.1:${port}", admin: false },
          services: { promotion: { endpoints: ["127.0.0.1", { address: "127.0.0.1:1", tags: { v: 2 } }] } },
          chains: { consumer: ["router", "nosuch", "transport"] },
          // @ts-expect-error a typo users make
          drainTimout: "5s",
        } as any);`,
    });
    const r = await run(["bun", CLI, "--config", join(dir, "bad.config.ts")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("invalid config");
    expect(r.stderr).toContain('service.ports.http: a value <= 65535, got 99999');
    expect(r.stderr).toContain('services.promotion.endpoints[0]: an address "host:port" (port 0..65535), got "127.0.0.1"');
    expect(r.stderr).toContain("services.promotion.endpoints[1].tags.v: a string, got 2");
    expect(r.stderr).toContain("drainTimout: a known field");
    expect(await portIsOpen(port)).toBe(false);
  });

  test("handler names are checked against the known handlers", async () => {
    const dir = tempDir({ "c.yaml": "service: { name: shop }\nchains: { consumer: [router, nosuch, transport] }\n" });
    const r = await run(["bun", CLI, "check", "-c", join(dir, "c.yaml")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('chains.consumer[1]: a handler name (');
    expect(r.stderr).toContain('got "nosuch"');
  });

  test("check prints the resolved config with defaults filled in", async () => {
    const dir = tempDir({ "c.json": JSON.stringify({ service: { name: "shop" }, services: { promotion: { endpoints: ["127.0.0.1:8091"] } } }) });
    const r = await run(["bun", CLI, "check", "--config", join(dir, "c.json")]);
    expect(r.code).toBe(0);
    const resolved = JSON.parse(r.stdout);
    expect(resolved.listen.consumer).toBe("127.0.0.1:30101");
    expect(resolved.listen.admin).toBe("127.0.0.1:30102");
    expect(resolved.drainTimeout).toBe(30000);
    expect(resolved.service.version).toBe("0.0.1");
  });

  test("the repository's mesher.config.ts is valid", async () => {
    const r = await run(["bun", CLI, "check"]);
    expect(r.stderr).toContain("is valid");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).chains.consumer[2]).toBe("[function stamp]");
  });

  test("a config outside the repository imports defineConfig from \"mesher\"; async function exports work", async () => {
    const dir = tempDir({
      "helper.ts": `import { defineConfig } from "mesher";\nexport const base = defineConfig({ service: { name: "shop" } });\n`,
      "mesher.config.ts": `import { defineConfig } from "mesher";\nimport { base } from "./helper.ts";\nexport default defineConfig(async () => ({ ...base, service: { ...base.service, version: "9.9.9" } }));\n`,
    });
    const r = await run(["bun", CLI, "check", "-c", join(dir, "mesher.config.ts")], { cwd: dir });
    expect(r.stderr).toContain("is valid");
    expect(JSON.parse(r.stdout).service.version).toBe("9.9.9");
  });

  test("--service-ports and SERVICE_PORTS set the app's ports (Mesher's rest is http)", async () => {
    const dir = tempDir({ "c.yaml": "service: { name: shop }\n" });
    const a = await run(["bun", CLI, "check", "-c", join(dir, "c.yaml"), "--service-ports", "rest:8080,grpc:9000"]);
    expect(JSON.parse(a.stdout).service.ports).toEqual({ http: 8080, grpc: 9000 });
    const b = await run(["bun", CLI, "check", "-c", join(dir, "c.yaml")], { env: { SERVICE_PORTS: "http:8081" } });
    expect(JSON.parse(b.stdout).service.ports).toEqual({ http: 8081 });
    const c = await run(["bun", CLI, "check", "-c", join(dir, "c.yaml"), "--service-ports", "http:x"]);
    expect(c.code).toBe(1);
    expect(c.stderr).toContain('--service-ports: entries like "http:8080", got "http:x"');
  });

  test("--mode is validated", async () => {
    const dir = tempDir({ "c.yaml": "service: { name: shop }\n" });
    const r = await run(["bun", CLI, "check", "-c", join(dir, "c.yaml"), "--mode", "gateway"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("mode:");
    expect(r.stderr).toContain('got "gateway"');
  });

  test("--help documents every option; a missing file is a clear error", async () => {
    const h = await run(["bun", CLI, "--help"]);
    for (const opt of ["--config", "--mode", "--service-ports", "SERVICE_PORTS", "check"]) expect(h.stdout).toContain(opt);
    const m = await run(["bun", CLI, "-c", "/nonexistent/mesher.config.ts"]);
    expect(m.code).toBe(1);
    expect(m.stderr).toContain("an existing config file");
  });
});

describe("graceful shutdown", () => {
  test("SIGTERM finishes in-flight requests, refuses new ones, exits 0", async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let arrived!: () => void;
    const arrivedP = new Promise<void>((r) => (arrived = r));
    const app = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch() {
        arrived();
        await released;
        return new Response("finished");
      },
    });
    const dir = tempDir({
      "c.yaml": `service: { name: shop }\nlisten: { consumer: "127.0.0.1:0", admin: "127.0.0.1:0" }\nservices: { slow: { endpoints: ["127.0.0.1:${app.port}"] } }\n`,
    });
    const m = await spawnMesher(["-c", join(dir, "c.yaml")]);
    try {
      const inflight = curl(["-x", `http://${m.consumer}`, "http://slow/"]);
      await arrivedP;
      m.proc.kill("SIGTERM");
      // Wait until the sidecar reports it is draining, then check it accepts nothing new.
      const { waitForLine } = await import("./helpers.ts");
      await waitForLine(m.proc.stdout, /draining/, m.lines);
      const port = Number(m.consumer.split(":")[1]);
      expect(await portIsOpen(port)).toBe(false);
      release();
      const r = await inflight;
      expect(r.status).toBe(200);
      expect(r.body).toBe("finished");
      expect(await m.proc.exited).toBe(0);
    } finally {
      m.proc.kill();
      app.stop(true);
    }
  });
});

describe("the runtime", () => {
  test("the sidecar runs with JSC's FTL tier off, in the process that was started; a BUN_JSC_useFTLJIT the user sets is kept", async () => {
    const dir = tempDir({ "c.yaml": `service: { name: shop }\nlisten: { consumer: "127.0.0.1:0", admin: false }\n` });
    const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    const a = await spawnMesher(["-c", join(dir, "c.yaml")]);
    const b = await spawnMesher(["-c", join(dir, "c.yaml")], { BUN_JSC_useFTLJIT: "1" });
    try {
      // The PID Bun.spawn returned is the one listening (re-executed in place, not a child).
      expect(environ(a.proc.pid)).toContain("BUN_JSC_useFTLJIT=0");
      expect(environ(b.proc.pid)).toContain("BUN_JSC_useFTLJIT=1");
      expect(environ(b.proc.pid)).not.toContain("BUN_JSC_useFTLJIT=0");
    } finally {
      a.proc.kill();
      b.proc.kill();
    }
  });
});

describe("the README walkthrough", () => {
  test("two sidecars started from the CLI carry curl to the app", async () => {
    const app = startEchoApp("promotion");
    const dir = tempDir({
      "b.yaml": `service: { name: promotion, ports: { http: ${app.port} } }\nlisten: { consumer: "127.0.0.1:0", provider: "127.0.0.1:0", admin: false }\n`,
    });
    const b = await spawnMesher(["-c", join(dir, "b.yaml")]);
    const aFile = join(dir, "a.yaml");
    await Bun.write(aFile, `service: { name: shop }\nlisten: { consumer: "127.0.0.1:0", admin: "127.0.0.1:0" }\nservices: { promotion: { endpoints: ["${b.provider}"] } }\n`);
    const a = await spawnMesher(["-c", aFile]);
    try {
      const r = await curl(["-x", `http://${a.consumer}`, "http://promotion/items"]);
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body).path).toBe("/items");
    } finally {
      a.proc.kill();
      b.proc.kill();
      await Promise.all([a.proc.exited, b.proc.exited]);
      app.stop(true);
    }
  });
});
