import * as v from "valibot";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/** Parses "250ms", "1.5s", "2m", "1h" (as Go and Envoy write them) into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION_RE.exec(text.trim());
  return m ? Math.round(Number(m[1]) * UNITS[m[2]!]!) : undefined;
}

/** A duration in config: a number of milliseconds or a string like "30s"; resolves to ms. */
export const Duration = v.pipe(
  v.union(
    [
      v.pipe(v.number(), v.minValue(0)),
      v.pipe(v.string(), v.regex(DURATION_RE)),
    ],
    'a duration: milliseconds as a number, or a string like "500ms", "30s", "2m"',
  ),
  v.transform((x): number => (typeof x === "number" ? x : parseDuration(x)!)),
  v.title("duration"),
);
