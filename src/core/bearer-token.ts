import { isCompactJws } from "./compact-jws.js";
import { refusal } from "./errors.js";

/** The default for `maxTokenSize`: 8 KiB, far above any sane access token. */
export const defaultMaxTokenSize = 8192;

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

/** The scheme of an `authorization` value connect-jwt reads, and its token. */
export interface Credentials {
  readonly scheme: "Bearer" | "DPoP";
  readonly token: string;
}

/**
 * readBearerToken is {@link parseBearerToken} without the compact-JWS syntax
 * check, which the verifier makes itself. Not part of the package's API.
 */
export function readBearerToken(value: string | null | undefined, maxTokenSize: number): string {
  if (typeof value === "string" && schemeOf(value) === "DPoP") {
    throw refusal("ERR_TOKEN_MISSING");
  }
  return readCredentials(value, maxTokenSize).token;
}

/**
 * readCredentials reads the scheme (`Bearer` or, RFC 9449, `DPoP`) and token
 * of an `authorization` value, with the rules of {@link parseBearerToken}; the
 * adapter hands the token to the verifier as it comes. Not part of the
 * package's API.
 */
export function readCredentials(
  value: string | null | undefined,
  maxTokenSize: number,
): Credentials {
  if (value === null || value === undefined || value === "") {
    throw refusal("ERR_TOKEN_MISSING");
  }
  const scheme = schemeOf(value);
  // The scheme and the spaces before the token are small; anything beyond
  // this bound cannot hold a token within the cap.
  if (value.length > maxTokenSize + 64) {
    throw refusal(scheme === undefined ? "ERR_TOKEN_MISSING" : "ERR_TOKEN_TOO_LARGE");
  }
  if (scheme === undefined) {
    throw refusal("ERR_TOKEN_MISSING");
  }
  const end = scheme.length;
  if (value.length === end) {
    throw refusal("ERR_AUTHORIZATION_MALFORMED");
  }
  if (value.charCodeAt(end) !== 0x20) {
    // "Bearerxyz" is another scheme; "Bearer\t...", or any other space, is malformed.
    throw refusal(
      /\s/.test(value.charAt(end)) ? "ERR_AUTHORIZATION_MALFORMED" : "ERR_TOKEN_MISSING",
    );
  }
  let start = end + 1;
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
  return { scheme, token };
}

/** The scheme a value starts with, matched case-insensitively, if it is one connect-jwt reads. */
function schemeOf(value: string): Credentials["scheme"] | undefined {
  const start = value.slice(0, 6).toLowerCase();
  if (start === "bearer") {
    return "Bearer";
  }
  return start.startsWith("dpop") ? "DPoP" : undefined;
}
