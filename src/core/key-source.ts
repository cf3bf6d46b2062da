import type { JSONWebKeySet, JWK, JWTVerifyGetKey } from "jose";
import { createLocalJWKSet } from "jose";
import { checkUrl } from "./fetch-json.js";
import { importOnUse } from "./key-import.js";
import { discoverJwksUri } from "./oidc-discovery.js";
import {
  allAsymmetric,
  checkKeyAlgorithms,
  isJwk,
  type NodeKeyObject,
  toPublicKey,
} from "./public-key.js";
import { createRemoteKeySet, type RemoteKeySetLimits } from "./remote-jwks.js";
import type { Telemetry } from "./telemetry.js";

/**
 * KeySourceOptions says where the keys that sign tokens come from. Give exactly
 * one of `secret`, `publicKey`, `jwks`, `jwksUrl` or `issuerUrl`.
 */
export interface KeySourceOptions {
  /**
   * A shared HMAC secret (HS256, HS384, HS512): a string (its UTF-8 bytes) or
   * bytes. At least 32 bytes, and at least as long as the hash of every
   * algorithm allowed (48 bytes for HS384, 64 for HS512).
   */
  secret?: string | Uint8Array;
  /**
   * One public key: a PEM string (SPKI `PUBLIC KEY` or an X.509 `CERTIFICATE`),
   * a public JWK, a WebCrypto `CryptoKey` or, on Node.js, a `KeyObject`.
   * RSA keys must have at least 2048 bits. A PEM or a JWK is checked at once
   * and imported into WebCrypto on first use (or by `warmUp()`).
   */
  publicKey?: string | JWK | NodeKeyObject | CryptoKey;
  /**
   * A local JSON Web Key Set (`{ keys: [...] }`), for an issuer with several
   * keys told apart by `kid`. Public keys only.
   */
  jwks?: JSONWebKeySet;
  /**
   * The URL of the issuer's JWK set, fetched on first use (or by `warmUp()`),
   * refetched when a token names an unknown `kid` and when the keys grow old.
   * HTTPS, or HTTP on a loopback address.
   */
  jwksUrl?: string | URL;
  /**
   * The issuer's URL for OpenID Connect discovery: its
   * `/.well-known/openid-configuration` names the JWKS URL, and its `issuer`
   * must equal this string exactly. Also the default for `issuer`.
   */
  issuerUrl?: string;
  /**
   * The signature algorithms to accept. Required for `publicKey` and `jwks`
   * unless each JWK names its `alg`; with `secret` it defaults to the HS
   * algorithms the secret is long enough for; with `jwksUrl` and `issuerUrl`
   * to every asymmetric algorithm (each key still verifies only the
   * algorithms of its type, and of its `alg` when named). Never `none`.
   */
  algorithms?: readonly string[];
}

/** A key, or a function that picks one from the token's header, for jose. */
export type VerificationKey = NodeKeyObject | CryptoKey | Uint8Array | JWTVerifyGetKey;

/** What {@link resolveKeySource} makes of the options. */
export interface KeySource {
  readonly key: VerificationKey;
  readonly algorithms: readonly string[];
  /** Loads remote keys, or imports a PEM or JWK, now; absent for other keys. */
  readonly warmUp?: () => Promise<void>;
}

const hmacAlgorithms = { HS256: 32, HS384: 48, HS512: 64 } as const;
const supported = [...Object.keys(hmacAlgorithms), ...allAsymmetric];
const sources = ["secret", "publicKey", "jwks", "jwksUrl", "issuerUrl"] as const;

/**
 * resolveKeySource checks the key options and returns what jose verifies with.
 * Every mistake throws a `TypeError` that says how to fix the call. Remote
 * keys tell the telemetry of their fetches.
 */
export function resolveKeySource(
  options: KeySourceOptions,
  limits: RemoteKeySetLimits,
  telemetry: Telemetry | undefined,
): KeySource {
  const given = sources.filter((k) => options[k] !== undefined);
  if (given.length !== 1) {
    const list = "`secret`, `publicKey`, `jwks`, `jwksUrl` or `issuerUrl`";
    throw new TypeError(
      given.length === 0
        ? `no key source; pass one of ${list}`
        : `pass only one of ${list}, not ${given.join(" and ")}`,
    );
  }
  const algorithms = checkAlgorithmNames(options.algorithms);
  if (options.secret !== undefined) {
    return resolveSecret(options.secret, algorithms);
  }
  if (options.publicKey !== undefined) {
    const key = toPublicKey(options.publicKey, "publicKey");
    const jwkAlg = isJwk(options.publicKey) ? options.publicKey.alg : undefined;
    const checked = checkKeyAlgorithms([{ key, jwkAlg }], algorithms, "publicKey");
    if (typeof key.key !== "function") {
      return { key: key.key, algorithms: checked };
    }
    const imports = importOnUse(key.key);
    return { key: imports.getKey, algorithms: checked, warmUp: () => imports.warmUp(checked) };
  }
  if (options.jwks !== undefined) {
    const jwks = options.jwks;
    if (!Array.isArray(jwks?.keys) || jwks.keys.length === 0) {
      throw new TypeError(`jwks must be a JWK set with at least one key: { keys: [...] }`);
    }
    const keys = jwks.keys.map((jwk, i) => ({
      key: toPublicKey(jwk, `jwks.keys[${i}]`),
      jwkAlg: jwk.alg,
    }));
    return {
      key: createLocalJWKSet(jwks),
      algorithms: checkKeyAlgorithms(keys, algorithms, "jwks"),
    };
  }
  if (algorithms?.some((alg) => alg in hmacAlgorithms)) {
    throw new TypeError(`remote keys verify asymmetric algorithms only, not HS*`);
  }
  let locate: () => Promise<URL>;
  if (options.jwksUrl !== undefined) {
    const url = checkUrl(options.jwksUrl, "jwksUrl");
    locate = () => Promise.resolve(url);
  } else {
    locate = discoverJwksUri(checkIssuerUrl(options.issuerUrl), limits, telemetry);
  }
  const remote = createRemoteKeySet(locate, limits, telemetry);
  return { key: remote.getKey, algorithms: algorithms ?? allAsymmetric, warmUp: remote.warmUp };
}

function checkIssuerUrl(value: unknown): string {
  if (typeof value !== "string") {
    throw new TypeError(`issuerUrl must be a string such as "https://auth.example.com/"`);
  }
  checkUrl(value, "issuerUrl");
  return value;
}

function checkAlgorithmNames(algorithms: readonly string[] | undefined) {
  if (algorithms === undefined) {
    return undefined;
  }
  if (!Array.isArray(algorithms) || algorithms.length === 0) {
    throw new TypeError(`algorithms must be a non-empty array, e.g. ["ES256"]`);
  }
  for (const alg of algorithms) {
    if (!supported.includes(alg)) {
      throw new TypeError(
        `algorithm ${JSON.stringify(alg)} is not supported; use some of ${supported.join(", ")}`,
      );
    }
  }
  return [...new Set(algorithms)];
}

function resolveSecret(secret: string | Uint8Array, algorithms: string[] | undefined) {
  const bytes = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`secret must be a string or a Uint8Array`);
  }
  if (bytes.byteLength === 0) {
    throw new TypeError(`secret is empty; is the variable it is read from set?`);
  }
  if (bytes.byteLength < 32) {
    throw new TypeError(
      `secret has ${bytes.byteLength} bytes; HMAC secrets need at least 32 random bytes`,
    );
  }
  const fitting = Object.entries(hmacAlgorithms)
    .filter(([, size]) => bytes.byteLength >= size)
    .map(([alg]) => alg);
  for (const alg of algorithms ?? []) {
    if (!(alg in hmacAlgorithms)) {
      throw new TypeError(
        `algorithm ${alg} needs a public key, not a secret; allow only HS256, HS384 or HS512 with \`secret\``,
      );
    }
    if (!fitting.includes(alg)) {
      throw new TypeError(
        `${alg} needs a secret of at least ${hmacAlgorithms[alg as keyof typeof hmacAlgorithms]} bytes`,
      );
    }
  }
  // A copy, so that a caller changing its buffer later changes nothing here.
  return { key: hmacKeys(Uint8Array.from(bytes)), algorithms: algorithms ?? fitting };
}

/**
 * hmacKeys imports the secret as a WebCrypto key once per algorithm, on first
 * use, and hands jose that key. Given the bytes, jose would import them anew
 * for every token: about a third of the cost of an HS256 verification.
 */
function hmacKeys(secret: Uint8Array<ArrayBuffer>): JWTVerifyGetKey {
  return importOnUse(async (alg) => {
    const hash = alg in hmacAlgorithms ? `SHA-${alg.slice(2)}` : "";
    if (hash === "") {
      throw new TypeError("an HMAC secret verifies HS256, HS384 or HS512 only");
    }
    return globalThis.crypto.subtle.importKey("raw", secret, { name: "HMAC", hash }, false, [
      "verify",
    ]);
  }).getKey;
}
