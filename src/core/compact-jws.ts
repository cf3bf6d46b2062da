import { base64url } from "jose";
import { AuthError, type AuthErrorCode, refusal, safeCause } from "./errors.js";

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

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * decodeSegment decodes a header or payload segment before the signature
 * check, and refuses with `code` anything that does not decode: base64url,
 * strict UTF-8, JSON, an object, as jose decodes them. The claims are trusted only once the
 * signature has verified.
 */
export function decodeSegment(segment: string, code: AuthErrorCode): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(strictUtf8.decode(base64url.decode(segment)));
  } catch (err) {
    throw new AuthError(code, { cause: safeCause(err) });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw refusal(code);
  }
  return value as Record<string, unknown>;
}
