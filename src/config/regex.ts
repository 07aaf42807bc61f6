import * as v from "valibot";

/** True when `source` compiles as a JavaScript regular expression. */
function compiles(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

/** A regular expression in config: checked at load, so a bad one is a config error, not a crash per request. */
export const Regex = v.pipe(v.string(), v.check(compiles, "a valid regular expression"));
