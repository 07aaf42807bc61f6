/** Self-signed certificates for tests, made with the openssl command line into a temp dir. */
import { join } from "node:path";
import { run, tempDir } from "./helpers.ts";

export interface CertFiles {
  cert: string;
  key: string;
}

/**
 * Writes `<name>.pem` and `<name>-key.pem` for a self-signed certificate valid for `names`
 * (DNS names, or IP addresses). The certificate is its own CA: trust it with `ca: cert`.
 */
export async function makeCert(names: string[], name = "server", dir = tempDir(), cn = names[0]): Promise<CertFiles> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
  const r = await run([
    "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
    "-keyout", key, "-out", cert, "-subj", `/CN=${cn}`,
    "-addext", `subjectAltName=${san}`,
    "-addext", "basicConstraints=critical,CA:TRUE",
  ]);
  if (r.code !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  return { cert, key };
}
