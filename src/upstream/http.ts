/**
 * HTTP/1.1 proxying rules shared by every listener and the transport (RFC 9110 §7.6.1).
 */

/** Headers that describe one connection, never forwarded by a proxy. */
export const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];

/** Removes hop-by-hop headers, and those that Connection names, in place. */
export function stripHopByHop(h: Headers): Headers {
  const connection = h.get("connection");
  if (connection) {
    for (const token of connection.split(",")) {
      const name = token.trim();
      if (name) h.delete(name);
    }
  }
  for (const name of HOP_BY_HOP) h.delete(name);
  return h;
}

/** Appends the peer to X-Forwarded-For and sets X-Forwarded-Proto/-Host when absent. */
export function setForwarded(h: Headers, clientAddress: string, host: string | null, proto: string): void {
  const xff = h.get("x-forwarded-for");
  h.set("x-forwarded-for", xff ? `${xff}, ${clientAddress}` : clientAddress);
  if (!h.has("x-forwarded-proto")) h.set("x-forwarded-proto", proto);
  if (host && !h.has("x-forwarded-host")) h.set("x-forwarded-host", host);
}

/** Splits a Host header into name and optional port ("shop:8080" -> ["shop", "8080"]). */
export function splitHost(host: string): [name: string, port: string | undefined] {
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    const port = host.slice(end + 2);
    return [host.slice(1, end), port || undefined];
  }
  const i = host.lastIndexOf(":");
  return i < 0 ? [host, undefined] : [host.slice(0, i), host.slice(i + 1) || undefined];
}

/**
 * Like splitHost, but strict, for the Host a caller names its destination with: undefined
 * when it is not a valid `host[:port]` (RFC 9110 §7.2: a server answers 400). A trailing dot
 * (an absolute DNS name, "shop.") is dropped; an empty port ("shop:") means none.
 */
export function parseHost(host: string): [name: string, port: string | undefined] | undefined {
  let name: string;
  let rest: string;
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    if (end < 0) return undefined;
    name = host.slice(1, end);
    rest = host.slice(end + 1);
    if (rest && !rest.startsWith(":")) return undefined;
    if (!IP_LITERAL_RE.test(name)) return undefined;
  } else {
    const i = host.indexOf(":");
    name = i < 0 ? host : host.slice(0, i);
    rest = i < 0 ? "" : host.slice(i);
    if (name.endsWith(".")) name = name.slice(0, -1);
    if (!REG_NAME_RE.test(name)) return undefined;
  }
  if (!name) return undefined;
  const port = rest.slice(1);
  if (!port) return [name, undefined];
  const n = PORT_RE.test(port) ? Number(port) : 0;
  return n >= 1 && n <= 65535 ? [name, port] : undefined;
}

const PORT_RE = /^\d{1,5}$/;
/** RFC 3986 reg-name (and IPv4) characters: no spaces, slashes, "@" and such. */
const REG_NAME_RE = /^[A-Za-z0-9\-._~!$&'()*+,;=%]+$/;
/** What may sit between the brackets of an IP literal (IPv6, a zone id, IPvFuture). */
const IP_LITERAL_RE = /^[A-Za-z0-9:.%_~\-]+$/;

/** Origin-form path and query of a request URL ("/items?x=1"). */
export function originForm(url: string): string {
  // Request.url is always absolute in Bun; skip "scheme://authority" without building a URL.
  const start = url.indexOf("/", url.indexOf("//") + 2);
  return start < 0 ? "/" : url.slice(start);
}
