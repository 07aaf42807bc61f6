/**
 * Generates the README's config reference from the schema's descriptions, so the two cannot
 * drift: `bun src/config/reference.ts` prints it; a test checks the README holds it.
 */
import { ConfigSchema } from "./schema.ts";

interface Node {
  type: string;
  expects?: string;
  pipe?: Node[];
  wrapped?: Node;
  default?: unknown;
  entries?: Record<string, Node>;
  item?: Node;
  value?: Node;
  options?: Node[] | unknown[];
  literal?: unknown;
  description?: string;
  kind?: string;
  getter?: (input: unknown) => Node;
}

/** A lazy "one item or a list of them" schema shows as its item. */
function unlazy(node: Node): Node {
  return node.type === "lazy" && node.getter ? node.getter({}) : node;
}

interface Row {
  path: string;
  type: string;
  def: string;
  description: string;
}

function describe(node: Node): string | undefined {
  for (const a of node.pipe ?? []) if (a.type === "description") return a.description;
  return undefined;
}

function titleOf(node: Node): string | undefined {
  for (const a of node.pipe ?? []) {
    if (a.type === "title") return (a as { title?: string }).title;
    if (a !== node && a.kind === "schema" && a.pipe) {
      const t = titleOf(a);
      if (t) return t;
    }
  }
  return undefined;
}

function typeName(node: Node): string {
  const title = titleOf(node);
  if (title) return title;
  switch (node.type) {
    case "optional":
    case "nullish":
      return typeName(node.wrapped!);
    case "strict_object":
    case "object":
      return "object";
    case "array": {
      const item = typeName(node.item!);
      return item.includes(" ") ? `(${item})[]` : `${item}[]`;
    }
    case "record":
      return `{ [name]: ${typeName(node.value!)} }`;
    case "union":
    case "variant":
      return [...new Set((node.options as Node[]).map(typeName))].join(" \\| ");
    case "picklist":
      return (node.options as unknown[]).map((o) => JSON.stringify(o)).join(" \\| ");
    case "literal":
      return JSON.stringify(node.literal);
    case "custom":
      return "function";
    case "lazy":
      return `${typeName(unlazy(node))} \\| list`;
    default:
      return node.type;
  }
}

function showDefault(node: Node): string {
  if (node.type !== "optional" || node.default === undefined) return "";
  const d = typeof node.default === "function" ? (node.default as () => unknown)() : node.default;
  if (d && typeof d === "object" && Object.keys(d).length === 0) return "";
  return `\`${JSON.stringify(d)}\``;
}

function walk(node: Node, path: string, rows: Row[], description?: string, def = ""): void {
  const desc = description ?? describe(node);
  if (node.type === "optional" || node.type === "nullish") {
    walk(node.wrapped!, path, rows, desc ?? describe(node.wrapped!), showDefault(node));
    return;
  }
  if (path) rows.push({ path, type: typeName(node), def, description: desc ?? "" });
  if (node.type === "lazy") node = unlazy(node);
  if (node.type === "strict_object" || node.type === "object") {
    for (const [k, child] of Object.entries(node.entries!)) walk(child, path ? `${path}.${k}` : k, rows);
  } else if (node.type === "record") {
    const inner = node.value!.type === "optional" ? node.value!.wrapped! : node.value!;
    if (inner.type === "strict_object" || inner.type === "object") {
      for (const [k, child] of Object.entries(inner.entries!)) walk(child, `${path}.<name>.${k}`, rows);
    }
  } else if (node.type === "array") {
    const inner = node.item!;
    if (inner.type === "strict_object" || inner.type === "object") {
      for (const [k, child] of Object.entries(inner.entries!)) walk(child, `${path}[].${k}`, rows);
    } else if (inner.type === "union") {
      for (const o of inner.options as Node[]) {
        if (o.type === "strict_object" || o.type === "object") {
          for (const [k, child] of Object.entries(o.entries!)) walk(child, `${path}[].${k}`, rows);
        }
      }
    }
  } else if (node.type === "union" || node.type === "variant") {
    // A variant inside a union (registry: one object per kind) lists each kind's fields.
    const options = (node.options as Node[]).flatMap((o) => (o.type === "variant" ? (o.options as Node[]) : [o]));
    for (const o of options) {
      if (o.type === "strict_object" || o.type === "object") {
        for (const [k, child] of Object.entries(o.entries!)) walk(child, `${path}.${k}`, rows);
      }
    }
  }
}

/** The reference as a markdown table. */
export function configReference(): string {
  const rows: Row[] = [];
  walk(ConfigSchema as unknown as Node, "", rows);
  const esc = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");
  const lines = [
    "| field | type | default | what it is |",
    "| --- | --- | --- | --- |",
    ...rows.map((r) => `| \`${r.path}\` | ${r.type} | ${r.def} | ${esc(r.description)} |`),
  ];
  return lines.join("\n");
}

/** Rewrites the block between the README's config-reference markers. */
async function writeReadme(): Promise<void> {
  const path = new URL("../../README.md", import.meta.url).pathname;
  const readme = await Bun.file(path).text();
  const next = readme.replace(
    /(<!-- config-reference:start -->\n)[\s\S]*?(<!-- config-reference:end -->)/,
    (_all, start: string, end: string) => `${start}${configReference()}\n${end}`,
  );
  await Bun.write(path, next);
}

if (import.meta.main) {
  if (process.argv.includes("--write")) await writeReadme();
  else console.log(configReference());
}
