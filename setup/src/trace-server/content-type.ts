/**
 * The boundary of a `multipart/form-data` Content-Type, read the way RFC 9110 (section 8.3.1)
 * defines media-type parameters and RFC 2046 (section 5.1.1) defines the boundary:
 *
 *   multipartBoundary('multipart/form-data; boundary="a b"')  // { boundary: "a b" }
 *   multipartBoundary("multipart/form-data; boundary=B; x-boundary=Z")  // { boundary: "B" }
 *
 * Parameters are `;`-separated `name=value` pairs, names compared case-insensitively, values a
 * token or a quoted-string. Anything else, a repeated `boundary`, or a boundary that RFC 2046
 * does not allow is refused with the reason, so the part counter and the parser can never read
 * two different boundaries out of one header (a `.*boundary=` search found the one in
 * `x-boundary=`).
 */
export function multipartBoundary(contentType: string): { boundary: string } | { error: string } {
  const header = contentType.trim();
  const media = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)\/([!#$%&'*+.^_`|~0-9A-Za-z-]+)/.exec(header);
  if (!media || `${media[1]}/${media[2]}`.toLowerCase() !== "multipart/form-data") return { error: "the media type is not multipart/form-data" };
  const params = new Map<string, string>();
  let at = media[0].length;
  while (at < header.length) {
    const param = PARAMETER.exec(header.slice(at));
    if (!param) return { error: `malformed parameters at ${JSON.stringify(header.slice(at, at + 40))}` };
    at += param[0].length;
    if (param[1] === undefined) continue;
    const name = param[1].toLowerCase();
    const value = param[2] !== undefined ? param[2].replace(/\\(.)/gs, "$1") : (param[3] ?? "");
    if (params.has(name)) return { error: `the parameter ${name} appears twice` };
    params.set(name, value);
  }
  const boundary = params.get("boundary");
  if (boundary === undefined) return { error: "it has no boundary parameter" };
  if (!BOUNDARY.test(boundary)) return { error: "its boundary is not 1-70 of the characters RFC 2046 allows, not ending in a space" };
  return { boundary };
}

// OWS ";" OWS [ token "=" ( quoted-string / token ) ]: an empty parameter (";;") is tolerated, as browsers send none but some clients do.
const PARAMETER = /^[ \t]*;[ \t]*(?:([!#$%&'*+.^_`|~0-9A-Za-z-]+)=(?:"((?:[^"\\\r\n]|\\[^\r\n])*)"|([!#$%&'*+.^_`|~0-9A-Za-z-]+)))?[ \t]*/;
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;
