import { base64url, calculateJwkThumbprint, type JWK } from "jose";
import type { JwtClaims } from "./claims.js";
import { decodeSegment, isCompactJws } from "./compact-jws.js";
import { createDpopNonces, type DpopNonceOptions, type DpopNonces } from "./dpop-nonce.js";
import { type Duration, parseDuration } from "./duration.js";
import { AuthError, refusal, safeCause } from "./errors.js";
import { assertKnownOptions, inOptionsOf, namesOf, type OptionNames } from "./options.js";
import { importProofKey, type ProofSignatureCheck } from "./proof-signature.js";
import { type DpopReplayStore, memoryReplayStore } from "./replay-store.js";

/** An algorithm a DPoP proof may be signed with. */
export type DpopAlgorithm = "ES256" | "ES384" | "ES512" | "EdDSA" | "Ed25519" | "PS256" | "RS256";

/**
 * DpopOptions turn on DPoP (RFC 9449): tokens bound to a key the client holds,
 * each call carrying a fresh proof signed with that key.
 */
export interface DpopOptions {
  /**
   * The public origins this server answers as, e.g. `["https://api.example.com"]`.
   * A proof's `htu` must be one of them plus the request's path. Never taken
   * from the request's `Host` header.
   */
  origins: readonly string[];
  /** Every token must be DPoP-bound. Default false: plain Bearer tokens keep working. */
  required?: boolean;
  /** The algorithms a proof may use. Default `["ES256", "EdDSA", "PS256", "RS256"]`. */
  algorithms?: readonly DpopAlgorithm[];
  /**
   * How old a proof's `iat` may be; it may lie at most `clockTolerance` in
   * the future. Default `"5m"`.
   */
  proofMaxAge?: Duration;
  /** Server-issued nonces (RFC 9449, section 8). Off by default. */
  nonce?: DpopNonceOptions;
  /** Where used proofs are remembered. Default: {@link memoryReplayStore}. */
  replayStore?: DpopReplayStore;
  /** The longest proof accepted, in characters, checked before decoding. Default 8 KiB. */
  maxProofSize?: number;
}

/** What a proof is checked against: the request as this server received it. */
export interface DpopRequest {
  /** The `dpop` header, or null. */
  readonly proof: string | null;
  /** The HTTP method, e.g. `"POST"`. */
  readonly method: string;
  /** The request's URL; only its path counts. */
  readonly url: string;
}

/** A compiled `dpop` option. */
export interface DpopChecker {
  readonly required: boolean;
  /** The `algs` of the challenge, space-delimited. */
  readonly algorithms: string;
  readonly nonces: DpopNonces | undefined;
  /**
   * check resolves when the request's proof binds `token` (verified, with
   * `claims`) to the caller's key, and throws the AuthError that refuses it.
   */
  check(request: DpopRequest, token: string, claims: JwtClaims): Promise<void>;
}

const dpopOptionNames: OptionNames<DpopOptions> = {
  origins: true,
  required: true,
  algorithms: true,
  proofMaxAge: true,
  nonce: true,
  replayStore: true,
  maxProofSize: true,
};

const knownAlgorithms = new Set<string>([
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
  "PS256",
  "RS256",
]);

// What a public JWK never has: the private members of EC, OKP and RSA keys, and a symmetric key.
const privateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/** The most proof headers, token hashes and URL paths remembered, each. */
const maxRemembered = 10_000;

/** A proof header's checked key. */
interface ProofKey {
  readonly alg: string;
  /** RFC 7638 thumbprint of the jwk: what a bound token's `cnf.jkt` holds. */
  readonly thumbprint: string;
  /** The check of a proof's signature; rejects with `ERR_DPOP_KEY_INVALID` when the key is unfit for the alg. */
  signatureCheck(): Promise<ProofSignatureCheck>;
}

/** The value `make` gives for `key`, made once and kept (failures too: they are deterministic). */
function remembered<V>(map: Map<string, V>, key: string, make: (key: string) => V): V {
  let value = map.get(key);
  if (value === undefined) {
    if (map.size >= maxRemembered) {
      map.clear();
    }
    value = make(key);
    map.set(key, value);
  }
  return value;
}

/** Compiles the `dpop` option of createJwtAuth; throws a TypeError for a mistake. */
export function createDpopChecker(options: DpopOptions, clockTolerance: number): DpopChecker {
  return inOptionsOf("dpop", () => compileDpop(options, clockTolerance));
}

function compileDpop(options: DpopOptions, clockTolerance: number): DpopChecker {
  if (typeof options !== "object" || options === null) {
    throw new TypeError('pass an object like { origins: ["https://api.example.com"] }');
  }
  assertKnownOptions(options, namesOf(dpopOptionNames));
  const origins = compileOrigins(options.origins);
  const algorithms = options.algorithms ?? ["ES256", "EdDSA", "PS256", "RS256"];
  if (!Array.isArray(algorithms) || algorithms.length === 0) {
    throw new TypeError('algorithms must be a non-empty list, e.g. ["ES256"]');
  }
  for (const alg of algorithms) {
    if (!knownAlgorithms.has(alg)) {
      throw new TypeError(
        `algorithms: ${String(alg)} is not one of ${[...knownAlgorithms].join(", ")}`,
      );
    }
  }
  const required = options.required ?? false;
  if (typeof required !== "boolean") {
    throw new TypeError("required must be true or false");
  }
  const proofMaxAge = parseDuration(options.proofMaxAge, "proofMaxAge") ?? 300;
  const maxProofSize = options.maxProofSize ?? 8192;
  if (!Number.isSafeInteger(maxProofSize) || maxProofSize < 1) {
    throw new TypeError("maxProofSize must be a positive integer");
  }
  const replayStore = options.replayStore ?? memoryReplayStore();
  if (typeof replayStore?.use !== "function") {
    throw new TypeError("replayStore must be an object with use(key, expiresAt)");
  }
  const nonces = options.nonce === undefined ? undefined : createDpopNonces(options.nonce);
  // A client signs every proof with one key, so its proofs share one header
  // segment, and it sends one token many times: what those two strings imply
  // (the checked key, its thumbprint, the imported CryptoKey, the token's
  // hash) is worked out once, not on every call. Bounded: a flood of new keys
  // or tokens empties the maps, never grows them.
  const proofKeys = new Map<string, Promise<ProofKey>>();
  const tokenHashes = new Map<string, string>();
  // Parsing the two URLs of a call was a twentieth of a DPoP call's CPU;
  // each is one of a few strings (a client calls a few methods).
  const htuPaths = new Map<string, string | null>();
  const requestPaths = new Map<string, string | null>();

  /**
   * Checks everything that costs no signature check first, so that a stale,
   * misdirected or mismatched proof is refused cheaply; then the signature;
   * then, and only for a proof that verified, the replay store.
   */
  async function check(request: DpopRequest, token: string, claims: JwtClaims): Promise<void> {
    const proof = request.proof;
    if (proof === null || proof === "") {
      throw refusal("ERR_DPOP_PROOF_MISSING");
    }
    if (proof.length > maxProofSize) {
      throw refusal("ERR_DPOP_PROOF_TOO_LARGE");
    }
    // Two DPoP headers arrive joined by a comma, which no compact JWS holds.
    if (!isCompactJws(proof)) {
      throw refusal("ERR_DPOP_PROOF_MALFORMED");
    }
    const [headerSegment = "", payloadSegment = ""] = proof.split(".", 2);
    const proofKey = await remembered(proofKeys, headerSegment, readProofKey);
    const payload = decodeSegment(payloadSegment, "ERR_DPOP_PROOF_MALFORMED");
    const { jti, htm, htu, iat, ath } = payload;
    if (
      typeof jti !== "string" ||
      jti === "" ||
      jti.length > 256 ||
      typeof htm !== "string" ||
      typeof htu !== "string" ||
      typeof iat !== "number" ||
      !Number.isFinite(iat) ||
      typeof ath !== "string"
    ) {
      throw refusal("ERR_DPOP_PROOF_MALFORMED");
    }
    if (htm !== request.method) {
      throw refusal("ERR_DPOP_METHOD_MISMATCH");
    }
    const htuPath = remembered(htuPaths, htu, (url) => pathOfHtu(origins, url));
    if (htuPath === null || htuPath !== remembered(requestPaths, request.url, pathOf)) {
      throw refusal("ERR_DPOP_URL_MISMATCH");
    }
    const now = Date.now() / 1000;
    if (iat < now - proofMaxAge - clockTolerance) {
      throw refusal("ERR_DPOP_PROOF_EXPIRED");
    }
    if (iat > now + clockTolerance) {
      throw refusal("ERR_DPOP_PROOF_NOT_YET_VALID");
    }
    if (nonces !== undefined && !(await nonces.accepts(payload.nonce))) {
      throw refusal("ERR_DPOP_NONCE_REQUIRED");
    }
    if (ath !== (tokenHashes.get(token) ?? (await hashOf(token)))) {
      throw refusal("ERR_DPOP_ATH_MISMATCH");
    }
    const cnf = claims.cnf as { jkt?: unknown } | undefined;
    if (cnf?.jkt !== proofKey.thumbprint) {
      throw refusal("ERR_DPOP_KEY_MISMATCH");
    }
    const verifies = await proofKey.signatureCheck();
    let verified: boolean;
    try {
      verified = await verifies(proof);
    } catch (err) {
      throw new AuthError("ERR_DPOP_SIGNATURE_INVALID", { cause: safeCause(err) });
    }
    if (!verified) {
      throw refusal("ERR_DPOP_SIGNATURE_INVALID");
    }
    let firstUse: boolean;
    try {
      firstUse = await replayStore.use(
        `${proofKey.thumbprint}:${jti}`,
        Math.ceil(iat + proofMaxAge + clockTolerance),
      );
    } catch (err) {
      throw new AuthError("ERR_DPOP_REPLAY_UNAVAILABLE", { cause: safeCause(err) });
    }
    if (firstUse !== true) {
      throw refusal("ERR_DPOP_REPLAYED");
    }
  }

  /** The checked key of a proof's header: typ, an allowed alg, a public jwk, its thumbprint. */
  async function readProofKey(headerSegment: string): Promise<ProofKey> {
    const header = decodeSegment(headerSegment, "ERR_DPOP_PROOF_MALFORMED");
    // RFC 7515, section 4.1.11: a JWS whose `crit` names extensions the
    // verifier does not understand is invalid; proofs need none.
    if ("crit" in header) {
      throw refusal("ERR_DPOP_PROOF_MALFORMED");
    }
    if (header.typ !== "dpop+jwt") {
      throw refusal("ERR_DPOP_TYPE_INVALID");
    }
    const alg = header.alg;
    if (typeof alg !== "string" || !algorithms.includes(alg as DpopAlgorithm)) {
      throw refusal("ERR_DPOP_ALGORITHM_NOT_ALLOWED");
    }
    const jwk = publicJwk(header.jwk);
    const thumbprint = await thumbprintOf(jwk);
    let imported: Promise<ProofSignatureCheck> | undefined;
    return {
      alg,
      thumbprint,
      // Imported when a proof first gets as far as its signature.
      async signatureCheck() {
        imported ??= importProofKey(jwk, alg);
        try {
          return await imported;
        } catch (err) {
          throw new AuthError("ERR_DPOP_KEY_INVALID", { cause: safeCause(err) });
        }
      },
    };
  }

  async function hashOf(token: string): Promise<string> {
    const hash = await sha256(token);
    if (tokenHashes.size >= maxRemembered) {
      tokenHashes.clear();
    }
    tokenHashes.set(token, hash);
    return hash;
  }

  return {
    required,
    algorithms: algorithms.join(" "),
    nonces,
    check,
  };
}

/** The normalised origins; an entry with a path, query or credentials is a mistake. */
function compileOrigins(origins: readonly string[]): ReadonlySet<string> {
  if (!Array.isArray(origins) || origins.length === 0) {
    throw new TypeError('origins must list the public origins, e.g. ["https://api.example.com"]');
  }
  const compiled = new Set<string>();
  for (const origin of origins) {
    const url = typeof origin === "string" && URL.canParse(origin) ? new URL(origin) : undefined;
    if (
      url === undefined ||
      (url.protocol !== "https:" && url.protocol !== "http:") ||
      url.pathname !== "/" ||
      url.search !== "" ||
      url.hash !== "" ||
      url.username !== "" ||
      url.password !== ""
    ) {
      throw new TypeError(
        `origins: ${JSON.stringify(origin)} is not an origin like "https://api.example.com"`,
      );
    }
    compiled.add(url.origin);
  }
  return compiled;
}

/**
 * The path a proof's `htu` names when it names one of the origins, after
 * RFC 3986 normalisation (scheme and host case, default port, dot segments);
 * null for anything else: no query, no fragment, no credentials.
 */
function pathOfHtu(origins: ReadonlySet<string>, htu: string): string | null {
  if (htu.includes("?") || htu.includes("#") || !URL.canParse(htu)) {
    return null;
  }
  const url = new URL(htu);
  if (url.username !== "" || url.password !== "" || !origins.has(url.origin)) {
    return null;
  }
  return url.pathname;
}

/** The normalised path of the request's URL; null when it is no URL. */
function pathOf(url: string): string | null {
  return URL.canParse(url) ? new URL(url).pathname : null;
}

/** The proof's `jwk` when it is a public asymmetric key; refuses anything else. */
function publicJwk(value: unknown): JWK {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw refusal("ERR_DPOP_KEY_INVALID");
  }
  const jwk = value as JWK;
  if (
    (jwk.kty !== "EC" && jwk.kty !== "OKP" && jwk.kty !== "RSA") ||
    privateMembers.some((member) => member in jwk)
  ) {
    throw refusal("ERR_DPOP_KEY_INVALID");
  }
  return jwk;
}

async function thumbprintOf(jwk: JWK): Promise<string> {
  try {
    return await calculateJwkThumbprint(jwk, "sha256");
  } catch (err) {
    throw new AuthError("ERR_DPOP_KEY_INVALID", { cause: safeCause(err) });
  }
}

/** base64url(SHA-256(value)): a proof's `ath` for a token. */
async function sha256(value: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value));
  return base64url.encode(new Uint8Array(digest));
}
