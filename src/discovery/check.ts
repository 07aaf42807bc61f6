/** Checks of discovery config that the schema cannot make (they need other fields). */
import type { ConfigProblem } from "../config/errors.ts";
import type { ResolvedConfig } from "../config/schema.ts";

export function discoveryProblems(config: Pick<ResolvedConfig, "service" | "healthCheck" | "apps">): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const servicePort = config.service.ports.http ?? Object.values(config.service.ports)[0];
  config.healthCheck.forEach((h, i) => {
    if (h.port === undefined && servicePort === undefined) {
      problems.push({ path: `healthCheck[${i}].port`, value: undefined, expected: "a port (or service.ports.http)" });
    }
  });
  const names = new Set([config.service.name.toLowerCase()]);
  config.apps.forEach((a, i) => {
    if (names.has(a.name.toLowerCase())) {
      problems.push({ path: `apps[${i}].name`, value: a.name, expected: "a name no other local app (or service.name) has" });
    }
    names.add(a.name.toLowerCase());
    const port = a.ports.http ?? Object.values(a.ports)[0];
    a.healthCheck.forEach((h, j) => {
      if (h.port === undefined && port === undefined) {
        problems.push({ path: `apps[${i}].healthCheck[${j}].port`, value: undefined, expected: "a port (or apps[].ports.http)" });
      }
    });
  });
  return problems;
}
