#!/usr/bin/env bun
/**
 * One command: `bun recipes/egress/run.ts`. Makes a self-signed certificate, starts the
 * "external" partner API (HTTPS on 127.0.0.1, named localhost), starts the shop's sidecar with
 * an egress rule for it, and runs the app through the sidecar. Exits 0 when the allowed call
 * tunnels and the forbidden one is refused.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const here = import.meta.dir;
const root = resolve(here, "../..");
const dir = mkdtempSync(join(tmpdir(), "mesher-egress-"));
const cert = join(dir, "partner.pem");
const key = join(dir, "partner-key.pem");

const ssl = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
  "-keyout", key, "-out", cert, "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]);
if (ssl.exitCode !== 0) throw new Error(`openssl failed: ${ssl.stderr}`);

const partner = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  tls: { cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8") },
  fetch: (req) => Response.json({ from: "partner-api", path: new URL(req.url).pathname }),
});
const env = { ...process.env, PARTNER_PORT: String(partner.port), CONSUMER: "127.0.0.1:0" };

const sidecar = Bun.spawn(["bun", join(root, "src/cli.ts"), "-c", join(here, "mesher.config.ts")], { cwd: root, env, stdout: "pipe", stderr: "inherit" });
const reader = sidecar.stdout.getReader();
let out = "";
let consumer: string | undefined;
while (!consumer) {
  const { value, done } = await reader.read();
  if (done) throw new Error(`the sidecar exited:\n${out}`);
  out += new TextDecoder().decode(value);
  consumer = /listening consumer=(\S+)/.exec(out)?.[1];
}
console.log(`sidecar: consumer ${consumer}; partner API: https://localhost:${partner.port}`);
// The sidecar logs refusals on stderr (inherited above); keep its stdout flowing.
void (async () => {
  for (;;) if ((await reader.read()).done) break;
})();

const app = Bun.spawn(["bun", join(here, "app.ts")], {
  env: { ...env, HTTPS_PROXY: `http://${consumer}`, PARTNER_CA: cert },
  stdout: "pipe",
  stderr: "inherit",
});
const lines = await new Response(app.stdout).text();
process.stdout.write(lines);
sidecar.kill();
partner.stop(true);
await sidecar.exited;

const ok = /allowed: .* -> 200 .*partner-api/.test(lines) && /forbidden: .* -> (refused|403)/.test(lines);
console.log(ok ? "egress recipe: OK" : "egress recipe: FAILED");
process.exit(ok ? 0 : 1);
