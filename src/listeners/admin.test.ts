import { expect, test } from "bun:test";
import { maskConfig } from "./admin.ts";

test("maskConfig hides secret-looking values and names functions", () => {
  const out = maskConfig({
    tls: { keyFile: "/etc/k.pem", certFile: "/etc/c.pem" },
    auth: { password: "hunter2", token: "abc", apiKey: "k" },
    chains: { consumer: ["router", function stamp() {}] },
    name: "shop",
  });
  expect(out).toEqual({
    tls: { keyFile: "***", certFile: "/etc/c.pem" },
    auth: { password: "***", token: "***", apiKey: "***" },
    chains: { consumer: ["router", "[function stamp]"] },
    name: "shop",
  });
});
