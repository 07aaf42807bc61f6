import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../../test/helpers.ts";
import { clientTls } from "./options.ts";

describe("clientTls", () => {
  test("reads the files once, follows their changes, and verifies unless told not to", async () => {
    const dir = tempDir({ "ca.pem": "first" });
    const tls = clientTls({ ca: join(dir, "ca.pem"), serverName: "api.internal", insecure: false });
    const a = tls();
    expect(a).toEqual({ ca: "first", serverName: "api.internal", servername: "api.internal", rejectUnauthorized: true });
    expect(tls()).toBe(a); // unchanged files: the same object, nothing rebuilt per request
    writeFileSync(join(dir, "ca.pem"), "second");
    let ca = "";
    for (let i = 0; i < 200 && ca !== "second"; i++) {
      ca = tls().ca ?? "";
      if (ca !== "second") await Bun.sleep(10);
    }
    expect(ca).toBe("second");
    expect(clientTls({ insecure: true })().rejectUnauthorized).toBe(false);
  });

  test("a missing file is an error at config time, not at the first request", () => {
    expect(() => clientTls({ ca: "/nonexistent/ca.pem", insecure: false })).toThrow();
  });
});

describe("TLS settings in the config", () => {
  test("unreadable files and a client cert without its key are config errors naming the field", async () => {
    const { resolveConfig } = await import("../config/resolve.ts");
    let message = "";
    try {
      resolveConfig({
        service: { name: "shop" },
        listen: { tls: { provider: { cert: "/nonexistent/c.pem", key: "/nonexistent/k.pem" } } },
        services: { pay: { endpoints: ["127.0.0.1:1"], tls: { cert: "/nonexistent/client.pem" } } },
      });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("listen.tls.provider.cert: a readable PEM file");
    expect(message).toContain("services.pay.tls.cert: a readable PEM file");
    expect(message).toContain("services.pay.tls: cert and key together");
  });
});
