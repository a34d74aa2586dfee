import type { IncomingHttpHeaders } from "node:http";

// Any web page open in a browser on this machine can reach a loopback server. It can send writes
// without a CORS preflight (a text/plain or multipart POST is a "simple" request), and through DNS
// rebinding (its own hostname re-pointed at 127.0.0.1) it can read answers as if same-origin. The
// local servers therefore refuse writes a browser marks as coming from another origin and, on
// loopback, any Host that does not name this machine. Reads stay open to navigation (links from a
// Jupyter page are same-site), and the SDK and OpenAI clients send neither header.

/** "loopback": answer only requests whose Host names this machine, which defeats DNS rebinding. */
export type AllowedHosts = "loopback" | "any";

const LOOPBACK_HOSTNAMES = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * The host name a Host header gives, lower case (IPv6 in brackets), or undefined when the header is
 * not `host[:port]`. Parsed as a URL authority, not sliced at the first ":": sliced,
 * `127.0.0.1:1984@evil.example` read as 127.0.0.1, though a URL parser (and so a browser or a
 * proxy) reads the host as evil.example.
 */
export function hostHeaderName(hostHeader: string): string | undefined {
  // Userinfo, a path, a query or a fragment: not an authority of host and port alone.
  if (/[/?#@\\]/.test(hostHeader)) return undefined;
  try {
    return new URL(`http://${hostHeader}`).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/** The Host policy for a server listening on `listenHost`: a loopback listener answers only to loopback names. */
export function allowedHostsFor(listenHost: string): AllowedHosts {
  return listenHost === "127.0.0.1" || listenHost === "localhost" || listenHost === "::1" ? "loopback" : "any";
}

/** Why a request is refused as one a web page could have made (answer 403), or undefined to serve it. */
export function browserRequestRefusal(method: string | undefined, headers: IncomingHttpHeaders, allowedHosts: AllowedHosts): string | undefined {
  const host = headers.host;
  if (allowedHosts === "loopback" && host !== undefined && !LOOPBACK_HOSTNAMES.has(hostHeaderName(host) ?? "")) {
    return `unexpected Host ${JSON.stringify(host.slice(0, 100))}: this server answers only to loopback names`;
  }
  if (method === "GET" || method === "HEAD") return undefined;
  const site = headers["sec-fetch-site"];
  const origin = headers.origin;
  let crossOrigin = site === "cross-site" || site === "same-site";
  if (origin !== undefined) {
    try {
      crossOrigin ||= new URL(origin).host !== host;
    } catch {
      crossOrigin = true;
    }
  }
  return crossOrigin ? "writes from another origin (a web page) are refused" : undefined;
}
