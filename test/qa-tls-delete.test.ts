import { expect, test } from "bun:test";
import { copyFileSync, rmSync } from "node:fs";
import * as tls from "node:tls";
import { makeCert } from "./certs.ts";
import { startEchoApp, startSidecar, tempDir } from "./helpers.ts";

function servedCn(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, servername: "localhost" }, () => {
      const cn = String(s.getPeerCertificate().subject.CN);
      s.end();
      resolve(cn);
    });
    s.on("error", reject);
  });
}

test("provider TLS: cert files deleted while running keep the old pair serving; written again, the new pair is served", async () => {
  const dir = tempDir();
  const certs = await makeCert(["localhost"], "server", dir, "first");
  const next = await makeCert(["localhost"], "next", tempDir(), "second");
  const app = startEchoApp();
  const s = startSidecar({ service: { name: "p", ports: { http: app.port! } }, listen: { provider: "127.0.0.1:0", tls: { provider: certs } } });
  const port = Number(s.addresses.provider!.split(":")[1]);
  try {
    expect(await servedCn(port)).toBe("first");
    rmSync(certs.cert); rmSync(certs.key);
    await Bun.sleep(500); // the watcher sees the deletion; the listener must keep its pair
    expect(await servedCn(port)).toBe("first");
    copyFileSync(next.key, certs.key); copyFileSync(next.cert, certs.cert);
    let cn = "";
    // The listener restarts on its port with the new pair: a connection at that very instant may
    // be reset (docs/listeners.md, Reload), so a failed attempt is one more poll.
    for (let i = 0; i < 100; i++) {
      cn = await servedCn(port).catch(() => "");
      if (cn === "second") break;
      await Bun.sleep(50);
    }
    expect(cn).toBe("second");
  } finally {
    await s.stop();
    app.stop(true);
  }
});
