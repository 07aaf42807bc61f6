import * as v from "valibot";

/** What a service name may be: letters, digits, '.', '_', '-' (not starting with a symbol). */
export const SERVICE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** A service name in config. Its own module: schema pieces import it without a cycle through schema.ts. */
export const ServiceName = v.pipe(v.string(), v.regex(SERVICE_NAME_RE, "a service name (letters, digits, '.', '_', '-')"));
