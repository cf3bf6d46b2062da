import { base64url, importJWK, importSPKI, importX509, type JWK } from "jose";
import { bitLength, readPem, readSpki, spkiOf } from "./spki.js";

const rsaAlgorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];

/** The signature algorithms each kind of public key can verify. */
export const asymmetricAlgorithms: Record<string, readonly string[]> = {
  rsa: rsaAlgorithms,
  "rsa-pss": ["PS256", "PS384", "PS512"],
  "ec:prime256v1": ["ES256"],
  "ec:secp384r1": ["ES384"],
  "ec:secp521r1": ["ES512"],
  ed25519: ["EdDSA", "Ed25519"],
};

/** Every asymmetric algorithm we verify. */
export const allAsymmetric: readonly string[] = [
  ...new Set(Object.values(asymmetricAlgorithms).flat()),
];

/**
 * checkPublicJwk tells whether a JWK fetched from an issuer is a public key we
 * can verify with safely: a supported type, RSA of at least 2048 bits, and an
 * `alg`, if named, that fits the key.
 */
export function checkPublicJwk(jwk: JWK): boolean {
  try {
    const { fits } = toPublicKey(jwk, "jwk");
    return fits !== undefined && (jwk.alg === undefined || fits.includes(jwk.alg));
  } catch {
    return false;
  }
}

/** isJwk tells a JWK object from the other forms a key can take. */
export function isJwk(input: unknown): input is JWK {
  return (
    typeof input === "object" &&
    input !== null &&
    typeof (input as { kty?: unknown }).kty === "string"
  );
}

/**
 * NodeKeyObject is what connect-jwt reads of a Node.js `KeyObject`, so that
 * one can be configured without this package importing `node:crypto`.
 */
export interface NodeKeyObject {
  /** `"public"` for a key that verifies; `"private"` and `"secret"` are refused. */
  readonly type: string;
  /** `"rsa"`, `"ec"`, `"ed25519"`... */
  readonly asymmetricKeyType?: string | undefined;
  /** The RSA modulus length and the EC curve, checked when the options are. */
  readonly asymmetricKeyDetails?: NodeKeyObjectDetails | undefined;
}

/** The details of a Node.js `KeyObject` that connect-jwt checks. */
export interface NodeKeyObjectDetails {
  /** An RSA key's length in bits: at least 2048. */
  readonly modulusLength?: number | undefined;
  /** An EC key's curve: `prime256v1`, `secp384r1` or `secp521r1`. */
  readonly namedCurve?: string | undefined;
}

// jose tells a KeyObject by the same mark, and verifies with it as it is.
function isKeyObject(input: unknown): input is NodeKeyObject {
  return (
    typeof input === "object" &&
    input !== null &&
    (input as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag] === "KeyObject"
  );
}

/** A public key ready for jose, with the algorithms its type can verify. */
export interface PublicKey {
  /** The key, or for a PEM or a JWK its import for an algorithm (made on first use). */
  readonly key: CryptoKey | NodeKeyObject | ((alg: string) => Promise<CryptoKey>);
  /** What the key is, for messages: "rsa", "ec:prime256v1", "RSASSA-PKCS1-v1_5"... */
  readonly type: string;
  /** The algorithms it can verify; `undefined` for a type we do not support. */
  readonly fits: readonly string[] | undefined;
}

/**
 * toPublicKey checks a configured public key (PEM, JWK, KeyObject or
 * CryptoKey) and throws a `TypeError` naming the fix for private, symmetric,
 * weak or unreadable keys. A PEM or a JWK is read here, synchronously, and
 * imported into WebCrypto when first used.
 */
export function toPublicKey(input: unknown, option: string): PublicKey {
  if (typeof CryptoKey !== "undefined" && input instanceof CryptoKey) {
    return fromCryptoKey(input, option);
  }
  if (input === "") {
    throw new TypeError(`${option} is empty; is the variable it is read from set?`);
  }
  let key: PublicKey["key"];
  let type: string;
  let modulusLength: number | undefined;
  try {
    if (typeof input === "string") {
      if (/PRIVATE KEY-----/.test(input)) {
        throw new TypeError(`${option} is a private key; pass the public key (SPKI PEM) instead`);
      }
      ({ key, type, modulusLength } = fromPem(input));
    } else if (isKeyObject(input)) {
      if (input.type !== "public") {
        throw new TypeError(`${option} is a ${input.type} key; pass the public key instead`);
      }
      key = input;
      const details = input.asymmetricKeyDetails;
      type = input.asymmetricKeyType ?? "";
      type = type === "ec" ? `ec:${details?.namedCurve ?? ""}` : type;
      modulusLength = details?.modulusLength;
    } else if (isJwk(input)) {
      if (input.kty === "oct") {
        throw new TypeError(`${option} is a symmetric JWK; pass its bytes as \`secret\` instead`);
      }
      if ("d" in input) {
        throw new TypeError(`${option} holds a private key; pass only the public members`);
      }
      ({ type, modulusLength } = readJwk(input));
      const jwk = { ...input };
      key = async (alg) => (await importJWK(jwk, alg)) as CryptoKey;
    } else {
      throw new TypeError(`${option} must be a PEM string, a JWK, a KeyObject or a CryptoKey`);
    }
  } catch (err) {
    if (err instanceof TypeError && err.message.startsWith(option)) {
      throw err;
    }
    throw new TypeError(`${option} is not a valid public key (PEM, JWK, KeyObject or CryptoKey)`, {
      cause: err,
    });
  }
  checkRsaSize(modulusLength, option);
  return { key, type, fits: asymmetricAlgorithms[type] };
}

/** Refuses an RSA key of fewer than 2048 bits; `bits` is undefined for other key types. */
function checkRsaSize(bits: number | undefined, option: string): void {
  if (bits !== undefined && bits < 2048) {
    throw new TypeError(`${option} is a ${bits}-bit RSA key; RSA keys need at least 2048 bits`);
  }
}

function fromPem(pem: string) {
  const { label, der } = readPem(pem);
  if (label === "PUBLIC KEY") {
    const key = (alg: string) => importSPKI(pem, alg);
    return { key, ...readSpki(der) };
  }
  if (label === "CERTIFICATE") {
    const key = (alg: string) => importX509(pem, alg);
    return { key, ...readSpki(spkiOf(der)) };
  }
  throw new Error(`a PEM ${label} is no public key`);
}

const curveSizes: Record<string, [type: string, bytes: number]> = {
  "P-256": ["ec:prime256v1", 32],
  "P-384": ["ec:secp384r1", 48],
  "P-521": ["ec:secp521r1", 66],
  Ed25519: ["ed25519", 32],
  Ed448: ["ed448", 57],
  X25519: ["x25519", 32],
  X448: ["x448", 56],
};

/** readJwk checks a public JWK's members as far as it can without importing it. */
function readJwk(jwk: JWK): { type: string; modulusLength: number | undefined } {
  const bytes = (member: string | undefined) => {
    if (typeof member !== "string" || member === "") {
      throw new Error("a key member is missing");
    }
    return base64url.decode(member);
  };
  if (jwk.kty === "RSA") {
    bytes(jwk.e);
    return { type: "rsa", modulusLength: bitLength(bytes(jwk.n)) };
  }
  const [type, size] = curveSizes[jwk.crv ?? ""] ?? ["", 0];
  const okp = jwk.kty === "OKP" && !type.startsWith("ec:");
  const ec = jwk.kty === "EC" && type.startsWith("ec:");
  if (!(okp || ec) || bytes(jwk.x).length !== size || (ec && bytes(jwk.y).length !== size)) {
    throw new Error("the JWK's members do not make a public key");
  }
  return { type, modulusLength: undefined };
}

// A CryptoKey's algorithm tells everything, and binds it to one JWS algorithm.
function fromCryptoKey(key: CryptoKey, option: string): PublicKey {
  if (key.type !== "public") {
    throw new TypeError(`${option} is a ${key.type} key; pass the public key instead`);
  }
  const algorithm = key.algorithm as {
    name: string;
    hash?: { name: string };
    namedCurve?: string;
    modulusLength?: number;
  };
  checkRsaSize(algorithm.modulusLength, option);
  const bits = algorithm.hash?.name.replace("SHA-", "") ?? "";
  const curves: Record<string, string> = { "P-256": "ES256", "P-384": "ES384", "P-521": "ES512" };
  const fits: Record<string, readonly string[] | undefined> = {
    "RSASSA-PKCS1-v1_5": [`RS${bits}`],
    "RSA-PSS": [`PS${bits}`],
    ECDSA:
      curves[algorithm.namedCurve ?? ""] === undefined
        ? undefined
        : [curves[algorithm.namedCurve ?? ""] as string],
    Ed25519: ["EdDSA", "Ed25519"],
  };
  return { key, type: algorithm.name, fits: fits[algorithm.name] };
}

/**
 * checkKeyAlgorithms settles the algorithms for configured keys: those given,
 * if every one fits some key, or else those the JWKs name; a TypeError when
 * neither holds.
 */
export function checkKeyAlgorithms(
  keys: readonly { key: PublicKey; jwkAlg: string | undefined }[],
  algorithms: string[] | undefined,
  option: string,
): string[] {
  const usable = new Set<string>();
  for (const { key, jwkAlg } of keys) {
    const family = key.fits;
    if (family === undefined) {
      throw new TypeError(`${option}: key type ${key.type} is not supported for JWT signatures`);
    }
    if (jwkAlg !== undefined && !family.includes(jwkAlg)) {
      throw new TypeError(`${option}: the JWK's alg ${jwkAlg} does not fit its key type`);
    }
    for (const alg of jwkAlg === undefined ? family : [jwkAlg]) {
      usable.add(alg);
    }
  }
  if (algorithms === undefined) {
    const named = keys.map((k) => k.jwkAlg);
    if (named.some((alg) => alg === undefined)) {
      throw new TypeError(
        `${option}: set \`algorithms\` (e.g. ["${[...usable][0]}"]); it is required for public keys whose JWK names no alg`,
      );
    }
    return [...new Set(named as string[])];
  }
  for (const alg of algorithms) {
    if (!usable.has(alg)) {
      throw new TypeError(
        `${option}: algorithm ${alg} cannot be verified with the configured key(s); they fit ${[...usable].join(", ")}`,
      );
    }
  }
  return algorithms;
}
