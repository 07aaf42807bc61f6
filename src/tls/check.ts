/** Config-time checks of TLS settings the schema cannot make: the files must be readable. */
import { accessSync, constants } from "node:fs";
import type { ConfigProblem } from "../config/errors.ts";
import type { ResolvedConfig } from "../config/schema.ts";

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

export function tlsProblems(config: ResolvedConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const check = (at: string, files: Record<string, unknown>) => {
    for (const key of ["cert", "key", "ca"]) {
      const path = files[key];
      if (typeof path === "string" && !readable(path)) problems.push({ path: `${at}.${key}`, value: path, expected: "a readable PEM file" });
    }
  };
  for (const [listener, tls] of Object.entries(config.listen.tls ?? {})) if (tls) check(`listen.tls.${listener}`, tls);
  for (const [name, svc] of Object.entries(config.services)) {
    if (!svc.tls) continue;
    check(`services.${name}.tls`, svc.tls);
    if (!svc.tls.cert !== !svc.tls.key) {
      problems.push({ path: `services.${name}.tls`, value: svc.tls, expected: "cert and key together (a client certificate needs both)" });
    }
  }
  return problems;
}
