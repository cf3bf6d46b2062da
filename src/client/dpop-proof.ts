import { base64url, type CryptoKey, type JWK, SignJWT } from "jose";
import type { DpopAlgorithm, DpopKeyPair } from "./dpop-key-pair.js";

/** What a proof covers: the call and the token it carries (RFC 9449 §4.2). */
export interface ProofTarget {
  /** The HTTP method. */
  readonly htm: string;
  /** The URL, without query and fragment. */
  readonly htu: string;
  /** The access token, whose hash goes into `ath`. */
  readonly token: string;
  /** The server's latest `DPoP-Nonce`, if it gave one. */
  readonly nonce: string | undefined;
}

/** DpopSigner signs DPoP proofs with one key pair. */
export interface DpopSigner {
  readonly alg: DpopAlgorithm;
  /** A new proof (a compact JWS) for `target`. */
  sign(target: ProofTarget): Promise<string>;
}

/**
 * createDpopSigner checks that `keyPair` can sign proofs, and picks its `alg`.
 * The check is synchronous so that a wrong key throws where the interceptor
 * is made, not on the first call.
 */
export function createDpopSigner(keyPair: DpopKeyPair, caller: string): DpopSigner {
  const { privateKey, publicKey } = (keyPair ?? {}) as Partial<DpopKeyPair>;
  const alg = algorithmOf(privateKey);
  if (
    privateKey === undefined ||
    publicKey === undefined ||
    alg === undefined ||
    privateKey.type !== "private" ||
    !privateKey.usages.includes("sign") ||
    publicKey.type !== "public" ||
    !publicKey.extractable ||
    algorithmOf(publicKey) !== alg
  ) {
    throw new TypeError(
      `${caller}: keyPair must be a WebCrypto key pair for ES256 (P-256), EdDSA (Ed25519), PS256 or RS256 (2048 bits or more) whose private key can sign and whose public key is extractable; make one with createDpopKeyPair()`,
    );
  }
  let jwk: Promise<JWK> | undefined;
  return {
    alg,
    async sign({ htm, htu, token, nonce }) {
      jwk ??= publicJwk(publicKey);
      const payload = {
        jti: base64url.encode(crypto.getRandomValues(new Uint8Array(16))),
        htm,
        htu,
        ath: base64url.encode(
          new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token))),
        ),
        ...(nonce === undefined ? {} : { nonce }),
      };
      return new SignJWT(payload)
        .setProtectedHeader({ typ: "dpop+jwt", alg, jwk: await jwk })
        .setIssuedAt()
        .sign(privateKey);
    },
  };
}

/** The proof algorithm a WebCrypto key is for, or undefined if it is for none. */
function algorithmOf(key: CryptoKey | undefined): DpopAlgorithm | undefined {
  const algorithm = key?.algorithm as
    | { name?: string; namedCurve?: string; hash?: { name?: string }; modulusLength?: number }
    | undefined;
  switch (algorithm?.name) {
    case "ECDSA":
      return algorithm.namedCurve === "P-256" ? "ES256" : undefined;
    case "Ed25519":
      return "EdDSA";
    case "RSA-PSS":
    case "RSASSA-PKCS1-v1_5":
      if (algorithm.hash?.name !== "SHA-256" || (algorithm.modulusLength ?? 0) < 2048) {
        return undefined;
      }
      return algorithm.name === "RSA-PSS" ? "PS256" : "RS256";
    default:
      return undefined;
  }
}

/** The public key's JWK with its public members only (no `ext`, `key_ops`, `alg`). */
async function publicJwk(publicKey: CryptoKey): Promise<JWK> {
  const { kty, crv, x, y, n, e } = (await crypto.subtle.exportKey("jwk", publicKey)) as JWK;
  const members = kty === "RSA" ? { kty, n, e } : { kty, crv, x, y };
  return Object.fromEntries(Object.entries(members).filter(([, v]) => v !== undefined)) as JWK;
}
