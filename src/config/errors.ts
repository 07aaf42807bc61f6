import type * as v from "valibot";

/** One problem in a config: where, what was there, what was expected. */
export interface ConfigProblem {
  path: string;
  value: unknown;
  expected: string;
}

/** A config that cannot be used; carries every problem found, not just the first. */
export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[], source?: string) {
    const where = source ? ` in ${source}` : "";
    const lines = problems.map((p) => `  - ${p.path || "(config)"}: ${p.expected}, got ${show(p.value)}`);
    super(`invalid config${where} (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n${lines.join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** Renders a value for an error message: short, and functions by name. */
export function show(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "function") return `function ${value.name || "(anonymous)"}`;
  let text: string;
  try {
    text = JSON.stringify(value, (_k, x) => (typeof x === "function" ? `[function ${x.name}]` : x)) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** "services.promotion.endpoints[1].address" from a valibot issue path. */
export function formatPath(path: v.BaseIssue<unknown>["path"]): string {
  let out = "";
  for (const item of path ?? []) {
    const key = (item as { key: unknown }).key;
    if (typeof key === "number") out += `[${key}]`;
    else if (typeof key === "string" && /^[A-Za-z_$][\w$]*$/.test(key)) out += out ? `.${key}` : key;
    else out += `[${JSON.stringify(key)}]`;
  }
  return out;
}

/**
 * A union that failed reports one issue for the whole union. When some branch got past the
 * type check (its issues sit deeper than the union), those deeper issues say what is wrong
 * far better ("endpoints[1].tags.v: a string") than the union's summary does.
 */
function leafIssues(issues: readonly v.BaseIssue<unknown>[]): v.BaseIssue<unknown>[] {
  const out: v.BaseIssue<unknown>[] = [];
  for (const issue of issues) {
    // Sub-issues of a union carry paths relative to the union.
    const deeper = issue.type === "union" ? (issue.issues ?? []).filter((i) => (i.path?.length ?? 0) > 0) : [];
    if (deeper.length) {
      const prefix = issue.path ?? [];
      out.push(...leafIssues(deeper.map((i) => ({ ...i, path: [...prefix, ...i.path!] }) as v.BaseIssue<unknown>)));
    } else out.push(issue);
  }
  return out;
}

/** Turns valibot issues into problems, one per leaf issue. */
export function problemsFromIssues(issues: readonly v.BaseIssue<unknown>[]): ConfigProblem[] {
  return leafIssues(issues).map((issue) => {
    const path = formatPath(issue.path);
    const last = issue.path?.at(-1) as { origin?: string; key?: unknown } | undefined;
    if (issue.kind === "schema" && issue.expected === "never") {
      return { path, value: last?.key ?? issue.input, expected: "a known field (this one is not)" };
    }
    // A strict object reports a missing required key with the key as path and its name as expected.
    if (issue.kind === "schema" && issue.input === undefined && issue.type !== "custom") {
      return { path, value: undefined, expected: "a required field" };
    }
    if (last?.origin === "key") return { path, value: last.key, expected: describeExpected(issue) };
    return { path, value: issue.input, expected: describeExpected(issue) };
  });
}

function describeExpected(issue: v.BaseIssue<unknown>): string {
  // Custom messages are written as "what was expected"; valibot's defaults start "Invalid ...".
  if (!issue.message.startsWith("Invalid ")) return issue.message;
  if (issue.kind === "schema" && issue.message.startsWith("Invalid type") && /^[A-Za-z]+$/.test(issue.expected ?? "")) {
    const t = issue.expected!.toLowerCase();
    return `${/^[aeiou]/.test(t) ? "an" : "a"} ${t}`;
  }
  if (issue.type === "integer") return "an integer";
  if (issue.type === "min_value") return `a value >= ${issue.requirement as number}`;
  if (issue.type === "max_value") return `a value <= ${issue.requirement as number}`;
  if (issue.type === "min_length") return `at least ${issue.requirement as number} item(s) or character(s)`;
  if (issue.type === "picklist") return `one of ${issue.expected}`;
  return issue.expected ? `${issue.expected}` : issue.message;
}
