import { createPublicKey, KeyObject } from "node:crypto";
import type { JSONWebKeySet, JWK, JWTVerifyGetKey } from "jose";
import { createLocalJWKSet } from "jose";

/**
 * KeySourceOptions says where the keys that sign tokens come from. Give exactly
 * one of `secret`, `publicKey` or `jwks`.
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
   * a public JWK, a Node.js `KeyObject` or a WebCrypto `CryptoKey`.
   * RSA keys must have at least 2048 bits.
   */
  publicKey?: string | JWK | KeyObject | CryptoKey;
  /**
   * A local JSON Web Key Set (`{ keys: [...] }`), for an issuer with several
   * keys told apart by `kid`. Public keys only.
   */
  jwks?: JSONWebKeySet;
  /**
   * The signature algorithms to accept. Required for `publicKey` and `jwks`
   * unless each JWK names its `alg`; with `secret` it defaults to the HS
   * algorithms the secret is long enough for. `none` is never accepted.
   */
  algorithms?: readonly string[];
}

/** A key, or a function that picks one from the token's header, for jose. */
export type VerificationKey = KeyObject | Uint8Array | JWTVerifyGetKey;

/** What {@link resolveKeySource} makes of the options. */
export interface KeySource {
  readonly key: VerificationKey;
  readonly algorithms: readonly string[];
}

const hmacAlgorithms = { HS256: 32, HS384: 48, HS512: 64 } as const;
const rsaAlgorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
const asymmetricAlgorithms: Record<string, readonly string[]> = {
  rsa: rsaAlgorithms,
  "rsa-pss": ["PS256", "PS384", "PS512"],
  "ec:prime256v1": ["ES256"],
  "ec:secp384r1": ["ES384"],
  "ec:secp521r1": ["ES512"],
  ed25519: ["EdDSA", "Ed25519"],
};
const supported = [
  ...Object.keys(hmacAlgorithms),
  ...new Set(Object.values(asymmetricAlgorithms).flat()),
];

/**
 * resolveKeySource checks the key options and returns what jose verifies with.
 * Every mistake throws a `TypeError` that says how to fix the call.
 */
export function resolveKeySource(options: KeySourceOptions, where: string): KeySource {
  const given = (["secret", "publicKey", "jwks"] as const).filter((k) => options[k] !== undefined);
  if (given.length !== 1) {
    throw new TypeError(
      given.length === 0
        ? `${where}: no key source; pass one of \`secret\`, \`publicKey\` or \`jwks\``
        : `${where}: pass only one of \`secret\`, \`publicKey\` or \`jwks\`, not ${given.join(" and ")}`,
    );
  }
  const algorithms = checkAlgorithmNames(options.algorithms, where);
  if (options.secret !== undefined) {
    return resolveSecret(options.secret, algorithms, where);
  }
  if (options.publicKey !== undefined) {
    const key = toPublicKeyObject(options.publicKey, `${where}: publicKey`);
    const jwkAlg = isJwk(options.publicKey) ? options.publicKey.alg : undefined;
    return {
      key,
      algorithms: checkKeyAlgorithms([{ key, jwkAlg }], algorithms, `${where}: publicKey`),
    };
  }
  const jwks = options.jwks as JSONWebKeySet;
  if (!Array.isArray(jwks?.keys) || jwks.keys.length === 0) {
    throw new TypeError(`${where}: jwks must be a JWK set with at least one key: { keys: [...] }`);
  }
  const keys = jwks.keys.map((jwk, i) => ({
    key: toPublicKeyObject(jwk, `${where}: jwks.keys[${i}]`),
    jwkAlg: jwk.alg,
  }));
  return {
    key: createLocalJWKSet(jwks),
    algorithms: checkKeyAlgorithms(keys, algorithms, `${where}: jwks`),
  };
}

function checkAlgorithmNames(algorithms: readonly string[] | undefined, where: string) {
  if (algorithms === undefined) {
    return undefined;
  }
  if (!Array.isArray(algorithms) || algorithms.length === 0) {
    throw new TypeError(`${where}: algorithms must be a non-empty array, e.g. ["ES256"]`);
  }
  for (const alg of algorithms) {
    if (!supported.includes(alg)) {
      throw new TypeError(
        `${where}: algorithm ${JSON.stringify(alg)} is not supported; use some of ${supported.join(", ")}`,
      );
    }
  }
  return [...new Set(algorithms)];
}

function resolveSecret(
  secret: string | Uint8Array,
  algorithms: string[] | undefined,
  where: string,
) {
  const bytes = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`${where}: secret must be a string or a Uint8Array`);
  }
  if (bytes.byteLength < 32) {
    throw new TypeError(
      `${where}: secret has ${bytes.byteLength} bytes; HMAC secrets need at least 32 random bytes`,
    );
  }
  const fitting = Object.entries(hmacAlgorithms)
    .filter(([, size]) => bytes.byteLength >= size)
    .map(([alg]) => alg);
  for (const alg of algorithms ?? []) {
    if (!(alg in hmacAlgorithms)) {
      throw new TypeError(
        `${where}: algorithm ${alg} needs a public key, not a secret; allow only HS256, HS384 or HS512 with \`secret\``,
      );
    }
    if (!fitting.includes(alg)) {
      throw new TypeError(
        `${where}: ${alg} needs a secret of at least ${hmacAlgorithms[alg as keyof typeof hmacAlgorithms]} bytes`,
      );
    }
  }
  // A copy, so that a caller changing its buffer later changes nothing here.
  return { key: Uint8Array.from(bytes), algorithms: algorithms ?? fitting };
}

function isJwk(input: unknown): input is JWK {
  return (
    typeof input === "object" &&
    input !== null &&
    !(input instanceof KeyObject) &&
    typeof (input as { kty?: unknown }).kty === "string"
  );
}

function toPublicKeyObject(input: unknown, where: string): KeyObject {
  let key: KeyObject;
  try {
    if (typeof input === "string") {
      if (/PRIVATE KEY-----/.test(input)) {
        throw new TypeError(`${where} is a private key; pass the public key (SPKI PEM) instead`);
      }
      key = createPublicKey(input);
    } else if (input instanceof KeyObject) {
      key = input;
    } else if (isJwk(input)) {
      if (input.kty === "oct") {
        throw new TypeError(`${where} is a symmetric JWK; pass its bytes as \`secret\` instead`);
      }
      if ("d" in input) {
        throw new TypeError(`${where} holds a private key; pass only the public members`);
      }
      key = createPublicKey({ key: input as import("node:crypto").JsonWebKey, format: "jwk" });
    } else if (typeof CryptoKey !== "undefined" && input instanceof CryptoKey) {
      key = KeyObject.from(input);
    } else {
      throw new TypeError(`${where} must be a PEM string, a JWK, a KeyObject or a CryptoKey`);
    }
  } catch (err) {
    if (err instanceof TypeError && err.message.startsWith(where)) {
      throw err;
    }
    throw new TypeError(`${where} is not a valid public key (PEM, JWK, KeyObject or CryptoKey)`, {
      cause: err,
    });
  }
  if (key.type !== "public") {
    throw new TypeError(`${where} is a ${key.type} key; pass the public key instead`);
  }
  const modulusLength = key.asymmetricKeyDetails?.modulusLength;
  if (modulusLength !== undefined && modulusLength < 2048) {
    throw new TypeError(
      `${where} is a ${modulusLength}-bit RSA key; RSA keys need at least 2048 bits`,
    );
  }
  return key;
}

function familyOf(key: KeyObject): string {
  const type = key.asymmetricKeyType ?? "";
  return type === "ec" ? `ec:${key.asymmetricKeyDetails?.namedCurve ?? ""}` : type;
}

function checkKeyAlgorithms(
  keys: readonly { key: KeyObject; jwkAlg: string | undefined }[],
  algorithms: string[] | undefined,
  where: string,
): string[] {
  const usable = new Set<string>();
  for (const { key, jwkAlg } of keys) {
    const family = asymmetricAlgorithms[familyOf(key)];
    if (family === undefined) {
      throw new TypeError(
        `${where}: key type ${familyOf(key)} is not supported for JWT signatures`,
      );
    }
    if (jwkAlg !== undefined && !family.includes(jwkAlg)) {
      throw new TypeError(`${where}: the JWK's alg ${jwkAlg} does not fit its key type`);
    }
    for (const alg of jwkAlg === undefined ? family : [jwkAlg]) {
      usable.add(alg);
    }
  }
  if (algorithms === undefined) {
    const named = keys.map((k) => k.jwkAlg);
    if (named.some((alg) => alg === undefined)) {
      throw new TypeError(
        `${where}: set \`algorithms\` (e.g. ["${[...usable][0]}"]); it is required for public keys whose JWK names no alg`,
      );
    }
    return [...new Set(named as string[])];
  }
  for (const alg of algorithms) {
    if (!usable.has(alg)) {
      throw new TypeError(
        `${where}: algorithm ${alg} cannot be verified with the configured key(s); they fit ${[...usable].join(", ")}`,
      );
    }
  }
  return algorithms;
}
