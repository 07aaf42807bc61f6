/**
 * The app: calls the partner API over HTTPS through its sidecar (HTTPS_PROXY), then tries a
 * host no egress rule allows. Prints one line per call.
 */
import { readFileSync } from "node:fs";

const proxy = process.env.HTTPS_PROXY!;
const ca = readFileSync(process.env.PARTNER_CA!, "utf8");
const port = process.env.PARTNER_PORT!;

async function call(url: string): Promise<string> {
  try {
    const res = await fetch(url, { proxy, tls: { ca } } as RequestInit);
    return `${res.status} ${(await res.text()).trim()}`;
  } catch (err) {
    return `refused (${(err as Error).message.split("\n")[0]})`;
  }
}

console.log(`allowed:   https://localhost:${port}/quote -> ${await call(`https://localhost:${port}/quote`)}`);
console.log(`forbidden: https://127.0.0.1:${port}/quote -> ${await call(`https://127.0.0.1:${port}/quote`)}`);
