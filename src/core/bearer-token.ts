import { refusal } from "./errors.js";

/** The default for `maxTokenSize`: 8 KiB, far above any sane access token. */
export const defaultMaxTokenSize = 8192;

// A compact JWS: three base64url segments, no padding, no whitespace.
const compactJws = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * isCompactJws tells whether a string is a compact JWS in canonical base64url:
 * three segments, no padding or whitespace, and no stray bits in the last
 * character of a segment. Without that last rule a segment has up to 16
 * spellings that decode alike; with it, the claims decoded before the
 * signature check are the very bytes the signature covers. (It does not make
 * a token one string: an ECDSA signature has a second valid form. Key
 * denylists on `jti`, never on the token.)
 */
export function isCompactJws(token: string): boolean {
  if (!compactJws.test(token)) {
    return false;
  }
  const first = token.indexOf(".");
  const second = token.indexOf(".", first + 1);
  return (
    canonicalEnd(token, 0, first) &&
    canonicalEnd(token, first + 1, second) &&
    canonicalEnd(token, second + 1, token.length)
  );
}

/** Whether the base64url segment `token[start, end)` leaves no stray bits in its last character. */
function canonicalEnd(token: string, start: number, end: number): boolean {
  switch ((end - start) % 4) {
    case 1:
      return false;
    case 2: // 12 bits carry 8: the last character's 4 low bits must be zero
      return "AQgw".includes(token.charAt(end - 1));
    case 3: // 18 bits carry 16: the last character's 2 low bits must be zero
      return "AEIMQUYcgkosw048".includes(token.charAt(end - 1));
    default:
      return true;
  }
}

/**
 * parseBearerToken reads the token out of an `authorization` header value
 * (RFC 6750, section 2.1), and checks that it has the syntax of a compact JWS
 * before anything decodes it.
 *
 * - `null` or an empty value, or a scheme other than `Bearer`: `ERR_TOKEN_MISSING`.
 * - The scheme is matched case-insensitively and may be followed by one or more
 *   spaces. `Bearer` without a token, other whitespace, or several values
 *   (comma-joined, which is also what a duplicated header becomes):
 *   `ERR_AUTHORIZATION_MALFORMED`.
 * - A value longer than the size cap is refused before it is scanned:
 *   `ERR_TOKEN_TOO_LARGE`.
 * - Anything but three strict base64url segments: `ERR_TOKEN_MALFORMED`.
 *
 * @example
 * ```ts
 * const token = parseBearerToken(req.header.get("authorization"));
 * ```
 */
export function parseBearerToken(
  value: string | null | undefined,
  maxTokenSize: number = defaultMaxTokenSize,
): string {
  if (!Number.isSafeInteger(maxTokenSize) || maxTokenSize < 1) {
    throw new TypeError("parseBearerToken: maxTokenSize must be a positive integer");
  }
  const token = readBearerToken(value, maxTokenSize);
  if (!isCompactJws(token)) {
    throw refusal("ERR_TOKEN_MALFORMED");
  }
  return token;
}

/**
 * readBearerToken is {@link parseBearerToken} without the compact-JWS syntax
 * check, which the verifier makes itself: the adapter hands it the token as
 * it comes. Not part of the package's API.
 */
export function readBearerToken(value: string | null | undefined, maxTokenSize: number): string {
  if (value === null || value === undefined || value === "") {
    throw refusal("ERR_TOKEN_MISSING");
  }
  // The scheme and the spaces before the token are small; anything beyond
  // this bound cannot hold a token within the cap.
  if (value.length > maxTokenSize + 64) {
    throw refusal(isBearerScheme(value) ? "ERR_TOKEN_TOO_LARGE" : "ERR_TOKEN_MISSING");
  }
  if (!isBearerScheme(value)) {
    throw refusal("ERR_TOKEN_MISSING");
  }
  if (value.length === 6) {
    throw refusal("ERR_AUTHORIZATION_MALFORMED");
  }
  if (value.charCodeAt(6) !== 0x20) {
    // "Bearerxyz" is another scheme; "Bearer\t...", or any other space, is malformed.
    throw refusal(/\s/.test(value.charAt(6)) ? "ERR_AUTHORIZATION_MALFORMED" : "ERR_TOKEN_MISSING");
  }
  let start = 7;
  while (value.charCodeAt(start) === 0x20) {
    start++;
  }
  const token = value.slice(start);
  if (token === "" || /[\s,]/.test(token)) {
    throw refusal("ERR_AUTHORIZATION_MALFORMED");
  }
  if (token.length > maxTokenSize) {
    throw refusal("ERR_TOKEN_TOO_LARGE");
  }
  return token;
}

function isBearerScheme(value: string): boolean {
  return value.length >= 6 && value.slice(0, 6).toLowerCase() === "bearer";
}
