import { base64url, importJWK, type JWK } from "jose";

/** What a proof's key must be for its `alg`, and how WebCrypto checks a signature under it. */
interface Fit {
  readonly key: { readonly name: string; readonly namedCurve?: string; readonly hash?: string };
  readonly verify: AlgorithmIdentifier | EcdsaParams | RsaPssParams;
}

const ecdsa = (namedCurve: string, hash: string): Fit => ({
  key: { name: "ECDSA", namedCurve },
  verify: { name: "ECDSA", hash },
});
const ed25519: Fit = { key: { name: "Ed25519" }, verify: { name: "Ed25519" } };

/** The algorithms a DPoP proof may use (RFC 7518, RFC 8037), as WebCrypto names them. */
const fits: Readonly<Record<string, Fit>> = {
  ES256: ecdsa("P-256", "SHA-256"),
  ES384: ecdsa("P-384", "SHA-384"),
  ES512: ecdsa("P-521", "SHA-512"),
  EdDSA: ed25519,
  Ed25519: ed25519,
  PS256: {
    key: { name: "RSA-PSS", hash: "SHA-256" },
    verify: { name: "RSA-PSS", saltLength: 32 },
  },
  RS256: {
    key: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    verify: { name: "RSASSA-PKCS1-v1_5" },
  },
};

/** Checks the signature of a compact JWS (already known to be one) under a proof's key. */
export type ProofSignatureCheck = (jws: string) => Promise<boolean>;

const ascii = new TextEncoder();

/**
 * importProofKey imports a DPoP proof's public `jwk` for `alg` and returns the
 * check of a proof's signature under it; it rejects when the key does not fit
 * the algorithm (curve, key type, an RSA key under 2048 bits).
 *
 * A client signs every proof with the same key, so the key is imported and
 * checked once, and each proof costs WebCrypto's verify alone: jose's
 * compactVerify would decode the header and the payload again, which
 * `check` has already done (about a tenth of a DPoP call's CPU, bench:micro's
 * DPoP rows).
 */
export async function importProofKey(jwk: JWK, alg: string): Promise<ProofSignatureCheck> {
  const fit = fits[alg];
  if (fit === undefined) {
    throw new TypeError(`${alg} is not an algorithm for DPoP proofs`);
  }
  const key = await importJWK({ ...jwk, alg, ext: true }, alg);
  if (key instanceof Uint8Array || !fitsKey(key, fit)) {
    throw new TypeError(`the proof's key does not fit ${alg}`);
  }
  return async (jws) => {
    const end = jws.lastIndexOf(".");
    // jose's decode makes a fresh Uint8Array over an ArrayBuffer; its type says ArrayBufferLike.
    const signature = base64url.decode(jws.slice(end + 1)) as Uint8Array<ArrayBuffer>;
    return await crypto.subtle.verify(fit.verify, key, signature, ascii.encode(jws.slice(0, end)));
  };
}

/** Whether an imported key is a public key of the algorithm, curve and hash `fit` names. */
function fitsKey(key: CryptoKey, fit: Fit): boolean {
  const algorithm = key.algorithm as {
    name: string;
    namedCurve?: string;
    hash?: { name: string };
    modulusLength?: number;
  };
  return (
    key.type === "public" &&
    key.usages.includes("verify") &&
    algorithm.name === fit.key.name &&
    algorithm.namedCurve === fit.key.namedCurve &&
    algorithm.hash?.name === fit.key.hash &&
    (algorithm.modulusLength === undefined || algorithm.modulusLength >= 2048)
  );
}
