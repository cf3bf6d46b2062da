import { type CryptoKey, generateKeyPair } from "jose";

/**
 * DpopAlgorithm is a signature algorithm for DPoP proofs that connect-jwt's server accepts.
 *
 * @example
 * ```ts
 * const alg: DpopAlgorithm = "EdDSA";
 * const keyPair = await createDpopKeyPair(alg);
 * ```
 */
export type DpopAlgorithm = "ES256" | "EdDSA" | "PS256" | "RS256";

/**
 * DpopKeyPair is the key pair DPoP proofs are signed with: a WebCrypto
 * `CryptoKeyPair`. The private key signs; the public key goes into each proof
 * as a JWK, so it must be extractable. The private key need not be, and
 * should not be.
 *
 * @example
 * ```ts
 * const keyPair: DpopKeyPair = await createDpopKeyPair("ES256");
 * await crypto.subtle.exportKey("jwk", keyPair.privateKey); // rejects: not extractable
 * ```
 */
export interface DpopKeyPair {
  /** Signs the proofs; best not extractable. */
  readonly privateKey: CryptoKey;
  /** Goes into each proof as a JWK; must be extractable (a WebCrypto public key always is). */
  readonly publicKey: CryptoKey;
}

const algorithms: readonly DpopAlgorithm[] = ["ES256", "EdDSA", "PS256", "RS256"];

/**
 * createDpopKeyPair makes a key pair for {@link dpopAuth}: a WebCrypto key
 * pair for `alg` (RSA keys of 2048 bits) whose private key is not extractable,
 * so that no script, extension or log can copy it out of the runtime; the
 * public key is. In a browser, keep the pair in IndexedDB (it stores
 * non-extractable keys) to reuse it across page loads.
 *
 * @example
 * ```ts
 * const keyPair = await createDpopKeyPair(); // ES256
 * const transport = createConnectTransport({
 *   baseUrl: "https://api.example.com",
 *   interceptors: [dpopAuth(() => session.getAccessToken(), { keyPair })],
 * });
 * ```
 */
export async function createDpopKeyPair(alg: DpopAlgorithm = "ES256"): Promise<DpopKeyPair> {
  if (!algorithms.includes(alg)) {
    throw new TypeError(`createDpopKeyPair: alg must be one of ${algorithms.join(", ")}`);
  }
  // WebCrypto's `extractable` applies to the private key; a public key is always extractable.
  const { privateKey, publicKey } = await generateKeyPair(alg, {
    extractable: false,
    ...(alg === "PS256" || alg === "RS256" ? { modulusLength: 2048 } : {}),
  });
  return { privateKey, publicKey };
}
