// Where `npm start` tells the user to open Jupyter, read from Jupyter's own log.

// A server URL names a port or carries the login token; documentation links that
// Jupyter prints in warnings do neither.
const SERVER_URL = /^https?:\/\/(?:\[[^\]\s]+\]|[^\s/:?#]+):\d+(?:[/?#]|$)/;

/**
 * The first server URL Jupyter printed (for the host it was started with: a
 * hostname, `localhost`, an IPv4 or `[IPv6]` address), pointed at the file tree;
 * null until a complete log line carries one. Only complete lines count, so a
 * URL cut by a pipe chunk boundary is never taken half.
 */
export function jupyterTreeUrl(log: string): string | null {
  const complete = log.slice(0, log.lastIndexOf("\n") + 1);
  for (const [candidate] of complete.matchAll(/\bhttps?:\/\/\S+/g)) {
    if (!URL.canParse(candidate)) continue;
    const url = new URL(candidate);
    if (!SERVER_URL.test(candidate) && !url.searchParams.has("token")) continue;
    // The classic notebook prints its root (`/?token=`), which redirects; the tree is where lessons are picked.
    if (url.pathname.endsWith("/")) url.pathname += "tree";
    return url.href;
  }
  return null;
}
