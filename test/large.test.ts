/**
 * 100 MB up and down through two sidecar processes, with their memory flat: bodies stream.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { run, spawnMesher, startApp, tempDir } from "./helpers.ts";

const SIZE = 100 * 1024 * 1024;
const CHUNK = new Uint8Array(64 * 1024).fill(120);

/** Peak resident memory of a process, in MB. */
function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m![1]) / 1024;
}

describe("large bodies", async () => {
  const app = startApp(async (req) => {
    if (req.method === "POST") {
      let n = 0;
      for await (const chunk of req.body!) n += chunk.byteLength;
      return Response.json({ received: n });
    }
    let sent = 0;
    return new Response(
      new ReadableStream({
        pull(c) {
          if (sent >= SIZE) return c.close();
          c.enqueue(CHUNK);
          sent += CHUNK.byteLength;
        },
      }),
      { headers: { "content-length": String(SIZE) } },
    );
  });
  const dir = tempDir({
    "b.yaml": `service: { name: big, ports: { http: ${app.port} } }\nlisten: { consumer: "127.0.0.1:0", provider: "127.0.0.1:0", admin: false }\n`,
  });
  const b = await spawnMesher(["-c", join(dir, "b.yaml")]);
  await Bun.write(join(dir, "a.yaml"), `service: { name: shop }\nlisten: { consumer: "127.0.0.1:0", admin: false }\nservices: { big: { endpoints: ["${b.provider}"] } }\n`);
  const a = await spawnMesher(["-c", join(dir, "a.yaml")]);
  const file = join(dir, "upload.bin");
  await Bun.write(file, new Uint8Array(SIZE).fill(1));
  afterAll(async () => {
    a.proc.kill();
    b.proc.kill();
    await Promise.all([a.proc.exited, b.proc.exited]);
    app.stop(true);
  });

  test("a 100 MB upload and a 100 MB download pass with both sidecars' memory flat", async () => {
    const baseline = Math.max(peakRssMb(a.proc.pid), peakRssMb(b.proc.pid));
    const up = await run(["curl", "-sS", "-x", `http://${a.consumer}`, "--data-binary", `@${file}`, "-H", "content-type: application/octet-stream", "http://big/upload"]);
    expect(JSON.parse(up.stdout)).toEqual({ received: SIZE });
    const down = await run(["curl", "-sS", "-x", `http://${a.consumer}`, "-o", "/dev/null", "-w", "%{size_download}", "http://big/download"]);
    expect(Number(down.stdout)).toBe(SIZE);
    for (const p of [a, b]) {
      // Buffering a body would add at least 100 MB; streaming keeps the growth small.
      expect(peakRssMb(p.proc.pid) - baseline).toBeLessThan(60);
    }
  });
});
