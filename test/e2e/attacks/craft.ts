import { createHmac, constants as cryptoConstants, KeyObject, sign } from "node:crypto";
import type { TestKey } from "../../helpers/fixtures.js";

// Hand-made compact tokens, byte for byte: the header and payload are given as
// JSON text (so that `__proto__`, `1e999` or a duplicated member reach the wire
// as written) and signed with node:crypto, which, unlike a JOSE library,
// signs whatever header it is given.

/** The text of a JSON value, or the string itself when it is already text. */
export type JsonText = string | Record<string, unknown> | unknown[];

function text(value: JsonText): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** enc encodes text (or a value as JSON) as unpadded base64url. */
export function enc(value: JsonText): string {
  return Buffer.from(text(value)).toString("base64url");
}

/** What signs: a private key (its own alg unless overridden), or an HMAC secret. */
export type Signer =
  | { readonly alg: string; readonly privateKey: TestKey["privateKey"] }
  | { readonly secret: Uint8Array | string };

/** The signature over `input` with the JWS algorithm `alg` (RS*, PS*, ES*, HS*). */
export function signature(signer: Signer, alg: string, input: string): string {
  const data = Buffer.from(input, "ascii");
  const bits = alg.slice(2);
  const hash = `sha${bits}`;
  if ("secret" in signer) {
    return createHmac(hash, signer.secret).update(data).digest("base64url");
  }
  const key = KeyObject.from(signer.privateKey);
  if (alg === "EdDSA") {
    return sign(null, data, key).toString("base64url");
  }
  if (alg.startsWith("ES")) {
    return sign(hash, data, { key, dsaEncoding: "ieee-p1363" }).toString("base64url");
  }
  if (alg.startsWith("PS")) {
    const saltLength = Number(bits) / 8;
    const padding = cryptoConstants.RSA_PKCS1_PSS_PADDING;
    return sign(hash, data, { key, padding, saltLength }).toString("base64url");
  }
  return sign(hash, data, key).toString("base64url");
}

/**
 * craft signs `header` and `payload` as given. The algorithm is the header's
 * `alg` when it is a string naming one, else `signAs` (or the key's own).
 */
export function craft(
  signer: Signer,
  header: JsonText,
  payload: JsonText,
  signAs?: string,
): string {
  const input = `${enc(header)}.${enc(payload)}`;
  const named = typeof header === "string" || Array.isArray(header) ? undefined : header;
  const alg =
    signAs ??
    (typeof named?.alg === "string" && /^(HS|RS|PS|ES)\d{3}$|^EdDSA$/.test(named.alg)
      ? named.alg
      : "alg" in signer
        ? signer.alg
        : "HS256");
  return `${input}.${signature(signer, alg, input)}`;
}

/** The three segments of a compact token. */
export function parts(token: string): [string, string, string] {
  const [h = "", p = "", s = ""] = token.split(".");
  return [h, p, s];
}

/** relabel swaps the header of a signed token for `header`, keeping payload and signature. */
export function relabel(token: string, header: JsonText): string {
  const [, p, s] = parts(token);
  return `${enc(header)}.${p}.${s}`;
}

/**
 * sized builds tokens with `build(filler)`, growing a filler string, until one
 * is exactly `length` characters long. base64url cannot make every length
 * (4n + 1 is impossible), so `build` gets a second filler to shift by.
 */
export function sized(length: number, build: (filler: string, shift: string) => string): string {
  for (let shift = 0; shift < 4; shift++) {
    let low = 0;
    let high = length;
    while (low <= high) {
      const mid = Math.floor((low + high) / 2);
      const token = build("x".repeat(mid), "y".repeat(shift));
      if (token.length === length) return token;
      if (token.length < length) low = mid + 1;
      else high = mid - 1;
    }
  }
  throw new Error(`sized: no token of exactly ${length} characters`);
}

/**
 * nonCanonical changes the unused low bits of a segment's last character:
 * the segment decodes to the same bytes, but it is another string.
 */
export function nonCanonical(segment: string): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const spare = segment.length % 4 === 2 ? 4 : segment.length % 4 === 3 ? 2 : 0;
  if (spare === 0) {
    throw new Error("nonCanonical: this segment has no unused bits");
  }
  const last = alphabet.indexOf(segment.slice(-1));
  return segment.slice(0, -1) + alphabet.charAt(last ^ 1);
}
