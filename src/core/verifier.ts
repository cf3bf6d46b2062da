import { Buffer } from "node:buffer";
import { compactVerify, errors, type JWTPayload } from "jose";
import { defaultMaxTokenSize, isCompactJws } from "./bearer-token.js";
import { freezeParsedClaims, type JwtClaims } from "./claims.js";
import { type Duration, parseDuration } from "./duration.js";
import { AuthError, type AuthErrorCode, safeCause, withoutStack } from "./errors.js";
import type { KeySourceOptions } from "./key-source.js";
import { assertKnownOptions, namesOf, type OptionNames } from "./option-names.js";
import {
  type ClaimPolicyOptions,
  createProvider,
  type IssuerOptions,
  type Provider,
} from "./provider.js";
import { defaultRemoteLimits, type RemoteKeySetLimits } from "./remote-jwks.js";
import { TokenCache, type TokenCacheOptions } from "./token-cache.js";

/** Limits for keys fetched over the network (`jwksUrl`, `issuerUrl`). */
export interface RemoteKeysOptions {
  /** Time for one fetch, headers and body. Default 5 seconds. */
  timeout?: Duration;
  /** The largest JWKS or discovery document accepted, in bytes. Default 1 MiB. */
  maxBodySize?: number;
  /** The least time between two fetches, failed or not. Default 30 seconds. */
  cooldown?: Duration;
  /** Keys older than this are refetched in the background on next use. Default 10 minutes. */
  maxAge?: Duration;
  /** How long beyond `maxAge` old keys keep verifying while refetches fail. Default 1 hour. */
  staleIfError?: Duration;
}

/**
 * VerifierOptions: one key source and claim policy, or several `issuers`;
 * and the limits that hold for every token.
 */
export interface VerifierOptions extends IssuerOptions {
  /**
   * Several issuers side by side, each with its own key source and, if it
   * wants, its own claim policy (the top-level claim options are the
   * defaults). The token's unverified `iss` only picks the issuer; the
   * verification stays as strict as with one. Leave the top-level key source
   * out when you use this.
   */
  issuers?: readonly IssuerOptions[];
  /** Clock skew tolerated on `exp`, `nbf` and `iat`: seconds or `"30s"`. Default 5 s, at most 60 s. */
  clockTolerance?: Duration;
  /** Longest token accepted, in characters, checked before any decoding. Default 8192. */
  maxTokenSize?: number;
  /** Limits for `jwksUrl` and `issuerUrl`. */
  remoteKeys?: RemoteKeysOptions;
  /**
   * The verified-token cache and the refused tokens it remembers: their
   * bounds, or `false` to verify every call. On by default.
   */
  cache?: TokenCacheOptions | false;
  /**
   * Consulted for every call after the token verified, cache hits included;
   * `true` refuses the call. If it throws, the call is refused as unavailable.
   */
  isRevoked?: (claims: JwtClaims) => boolean | Promise<boolean>;
}

/** Verifier checks compact JWTs against the configured issuers. */
export interface Verifier {
  /**
   * verify resolves to the token's claims, deeply frozen, or rejects with an
   * {@link AuthError}; it never rejects with anything else.
   */
  verify(token: string): Promise<JwtClaims>;
  /** Loads every remote key set now; rejects with an AuthError if one cannot be had. */
  warmUp(): Promise<void>;
  /** The longest token the verifier accepts, for header parsing. */
  readonly maxTokenSize: number;
  /** The clock tolerance in seconds, for checks made after verification (stream expiry). */
  readonly clockTolerance: number;
}

/**
 * A verifier that answers a cached token without waiting, for the request
 * gate and the interceptor (not part of the package's API).
 */
export interface CachingVerifier extends Verifier {
  /**
   * verifyNow is `verify` without a promise where it can decide at once: the
   * claims themselves for a cached token (and no `isRevoked` to ask), the
   * AuthError of a refusal decided before the signature, returned rather than
   * thrown; otherwise a promise. It never throws.
   */
  verifyNow(token: string): JwtClaims | AuthError | Promise<JwtClaims>;
}

const defaultClockTolerance = 5;
const maxClockTolerance = 60;

/** The claim policy's options: an entry of `issuers` inherits those it leaves out. */
const claimPolicyOptions: OptionNames<ClaimPolicyOptions> = {
  issuer: true,
  audience: true,
  typ: true,
  requiredClaims: true,
  maxTokenAge: true,
  maxLifetime: true,
  profile: true,
};

const keySourceOptions: OptionNames<KeySourceOptions> = {
  secret: true,
  publicKey: true,
  jwks: true,
  jwksUrl: true,
  issuerUrl: true,
  algorithms: true,
};

/** Every option of an entry of `issuers`. */
const issuerOptions: OptionNames<IssuerOptions> = { ...keySourceOptions, ...claimPolicyOptions };

/** Every option of {@link createVerifier}, for the check of unknown options. */
export const verifierOptions: OptionNames<VerifierOptions> = {
  ...issuerOptions,
  issuers: true,
  clockTolerance: true,
  maxTokenSize: true,
  remoteKeys: true,
  cache: true,
  isRevoked: true,
};

/**
 * createVerifier checks the options once, eagerly, and returns a verifier.
 * Every mistake in the options throws a `TypeError` naming the fix.
 *
 * @example
 * ```ts
 * const verifier = createVerifier({ secret, issuer: "https://auth.example.com/", audience: "api" });
 * const claims = await verifier.verify(token);
 * ```
 */
export function createVerifier(options: VerifierOptions): Verifier {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      "createVerifier: pass an options object with a key source, e.g. { jwks, algorithms }",
    );
  }
  assertKnownOptions(options, namesOf(verifierOptions), "createVerifier");
  const { verify, warmUp, maxTokenSize, clockTolerance } = buildVerifier(options, "createVerifier");
  return { verify, warmUp, maxTokenSize, clockTolerance };
}

/** buildVerifier is {@link createVerifier} with the cache look; `where` names the caller in errors. */
export function buildVerifier(options: VerifierOptions, where: string): CachingVerifier {
  const clockTolerance =
    parseDuration(options.clockTolerance, `${where}: clockTolerance`) ?? defaultClockTolerance;
  if (clockTolerance > maxClockTolerance) {
    throw new TypeError(
      `${where}: clockTolerance is ${clockTolerance}s; keep it at most ${maxClockTolerance}s`,
    );
  }
  const maxTokenSize = options.maxTokenSize ?? defaultMaxTokenSize;
  if (!Number.isSafeInteger(maxTokenSize) || maxTokenSize < 64) {
    throw new TypeError(`${where}: maxTokenSize must be an integer of at least 64 (characters)`);
  }
  const limits = remoteLimits(options.remoteKeys ?? {}, `${where}: remoteKeys`);
  const cache = createCache(options.cache, `${where}: cache`);
  const refusals = createRefusalCache(options.cache);
  const { isRevoked } = options;
  if (isRevoked !== undefined && typeof isRevoked !== "function") {
    throw new TypeError(`${where}: isRevoked must be a function (claims) => boolean`);
  }
  const select = createSelector(options, clockTolerance, limits, where);
  const decodeHeader = createHeaderDecoder();

  // Refusals decided before the signature are returned, not thrown: a throw
  // caught a few frames up costs several µs in a busy server, more than all
  // the checks that decide most refusals.
  function verifyNow(token: string): JwtClaims | AuthError | Promise<JwtClaims> {
    if (typeof token !== "string" || token.length > maxTokenSize) {
      return new AuthError(
        typeof token === "string" ? "ERR_TOKEN_TOO_LARGE" : "ERR_TOKEN_MALFORMED",
      );
    }
    const nowSec = Date.now() / 1000;
    // The cache holds only tokens that passed the syntax check of verifyFresh,
    // so a hit needs no second look at the string.
    const hit = cache?.get(token, nowSec, clockTolerance);
    if (hit === "expired") {
      return new AuthError("ERR_TOKEN_EXPIRED");
    }
    // Without isRevoked the claims come back as they are, not in a promise.
    if (hit !== undefined) {
      return isRevoked === undefined ? hit : checkRevoked(isRevoked, hit);
    }
    // Refusals are stored without an exp: never "expired", only dropped by maxTtl.
    const refused = refusals?.get(token, nowSec, clockTolerance);
    if (refused !== undefined && refused !== "expired") {
      return new AuthError(refused);
    }
    try {
      return verifyFresh(token, nowSec);
    } catch (err) {
      // verifyFresh returns its refusals; should anything in it throw, that is a refusal too.
      return new AuthError("ERR_TOKEN_INVALID", { cause: safeCause(err) });
    }
  }

  /**
   * A token the cache does not have. Everything that needs no key runs here,
   * synchronously, and a refusal comes back at once: what can never verify
   * (malformed, wrong alg, expired, wrong iss or aud...) costs no signature
   * check, no key fetch, and no promise. Only the signature check is awaited.
   */
  function verifyFresh(token: string, nowSec: number): AuthError | Promise<JwtClaims> {
    // The same strict syntax as a header's token: verify() may be called directly.
    if (!isCompactJws(token)) {
      return refuse(token, "ERR_TOKEN_MALFORMED");
    }
    // The claims decoded here are those the signature then covers: the
    // payload segment is canonical base64url (isCompactJws), so jose
    // verifies the very bytes decoded.
    const first = token.indexOf(".");
    const second = token.indexOf(".", first + 1);
    const header = decodeHeader(token.slice(0, first));
    if (header instanceof AuthError) {
      return remember(token, header);
    }
    const unverified = decodeSegment(token.slice(first + 1, second));
    if (unverified instanceof AuthError) {
      return remember(token, unverified);
    }
    const provider = select(unverified.iss);
    if (typeof provider === "string") {
      return refuse(token, provider);
    }
    const refusal = provider.check(header, unverified, nowSec);
    if (refusal !== undefined) {
      return refuse(token, refusal);
    }
    return verifySignature(token, provider, unverified);
  }

  /** The refusal of a token for `code`, remembered when nothing can change it. */
  function refuse(token: string, code: AuthErrorCode): AuthError {
    return remember(token, new AuthError(code));
  }

  /** Returns `refusal`, remembered first in the refusal cache when nothing can change it. */
  function remember(token: string, refusal: AuthError): AuthError {
    if (refusals !== undefined && lastingRefusals.has(refusal.code)) {
      refusals.offer(token, refusal.code, Number.POSITIVE_INFINITY);
    }
    return refusal;
  }

  async function verifySignature(
    token: string,
    provider: Provider,
    payload: JWTPayload,
  ): Promise<JwtClaims> {
    try {
      // jose picks the overload from the key's type; the union is fine at run time.
      await compactVerify(token, provider.key as Uint8Array, provider.verifyOptions);
    } catch (err) {
      throw err instanceof AuthError ? err : new AuthError(codeOf(err), { cause: safeCause(err) });
    }
    // The payload was parsed for this call alone: frozen where it is.
    let claims = freezeParsedClaims(payload);
    if (isRevoked !== undefined) {
      claims = await checkRevoked(isRevoked, claims);
    }
    cache?.offer(token, claims, payload.exp as number, provider.staleAt(payload));
    return claims;
  }

  return {
    maxTokenSize,
    clockTolerance,
    verifyNow,
    verify(token) {
      // verifyNow's promise itself, with no async wrapper to wait through; an
      // answer or a refusal decided at once becomes a settled promise.
      const outcome = verifyNow(token);
      return outcome instanceof AuthError ? Promise.reject(outcome) : Promise.resolve(outcome);
    },
    async warmUp() {
      await Promise.all(select.providers.map((p) => p.warmUp?.()));
    },
  };
}

async function checkRevoked(
  isRevoked: NonNullable<VerifierOptions["isRevoked"]>,
  claims: JwtClaims,
): Promise<JwtClaims> {
  let revoked: boolean;
  try {
    revoked = await isRevoked(claims);
  } catch (err) {
    throw new AuthError("ERR_REVOCATION_UNAVAILABLE", { cause: safeCause(err) });
  }
  if (revoked) {
    throw new AuthError("ERR_TOKEN_REVOKED");
  }
  return claims;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** How many decoded headers a verifier keeps. */
const headerMemoSize = 16;

/**
 * Decodes a token's protected header, remembering the last few: an issuer
 * signs its tokens with one of a few headers (one per key), so the header of
 * a token never seen is nearly always one decoded before. Headers are frozen
 * (the checks only read them) and the memo is emptied when it is full, so a
 * client that sends headers no one else sends cannot grow it. (A key, a slice
 * of its token, keeps that token's string alive: at most 16 tokens, 128 KiB
 * at the default `maxTokenSize`.)
 */
function createHeaderDecoder(): (segment: string) => Readonly<Record<string, unknown>> | AuthError {
  const memo = new Map<string, Readonly<Record<string, unknown>>>();
  return (segment) => {
    let header = memo.get(segment);
    if (header === undefined) {
      const decoded = decodeSegment(segment);
      if (decoded instanceof AuthError) {
        return decoded;
      }
      header = Object.freeze(decoded);
      if (memo.size >= headerMemoSize) {
        memo.clear();
      }
      memo.set(segment, header);
    }
    return header;
  };
}

/**
 * Decodes a header or payload segment for the prechecks, and calls anything
 * that does not decode malformed: base64url, strict UTF-8, JSON, an object, as
 * jose decodes them. The token has passed isCompactJws (canonical base64url,
 * nothing Buffer's decoder would skip), so these are the bytes jose's
 * signature check covers; the claims are trusted only once it has passed.
 * (Exported for bench/cold-steps.ts; not part of the package's API.)
 */
export function decodeSegment(segment: string): Record<string, unknown> | AuthError {
  let value: unknown;
  try {
    // Only the class of a parse error is kept (safeCause): no stack to capture.
    value = withoutStack(() => JSON.parse(strictUtf8.decode(Buffer.from(segment, "base64url"))));
  } catch (err) {
    return new AuthError("ERR_TOKEN_MALFORMED", { cause: safeCause(err) });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return new AuthError("ERR_TOKEN_MALFORMED");
  }
  return value as Record<string, unknown>;
}

/** Builds the function that picks the provider for a token's unverified `iss`. */
function createSelector(
  options: VerifierOptions,
  clockTolerance: number,
  limits: RemoteKeySetLimits,
  where: string,
) {
  if (options.issuers === undefined) {
    const provider = createProvider(options, clockTolerance, limits, where);
    return Object.assign((_iss: unknown): Provider | AuthErrorCode => provider, {
      providers: [provider],
    });
  }
  const stray = [...namesOf(keySourceOptions), "issuer" as const].filter(
    (k) => options[k] !== undefined,
  );
  if (stray.length > 0) {
    throw new TypeError(
      `${where}: with \`issuers\`, give ${stray.join(", ")} inside each issuer, not at the top level`,
    );
  }
  if (!Array.isArray(options.issuers) || options.issuers.length === 0) {
    throw new TypeError(
      `${where}: issuers must be a non-empty array of { issuer, <key source>, ... }`,
    );
  }
  // What an entry leaves out, or leaves undefined, it inherits: an option
  // read from an unset environment variable never lifts a check.
  const inherited = definedOptions(options, namesOf(claimPolicyOptions));
  const byIssuer = new Map<string, Provider>();
  options.issuers.forEach((entry: IssuerOptions, i) => {
    const here = `${where}: issuers[${i}]`;
    if (typeof entry !== "object" || entry === null) {
      throw new TypeError(`${here} must be an object: { issuer, <key source>, ... }`);
    }
    assertKnownOptions(entry, namesOf(issuerOptions), here);
    const own = definedOptions(entry, namesOf(issuerOptions));
    const provider = createProvider({ ...inherited, ...own }, clockTolerance, limits, here);
    if (provider.issuers === undefined) {
      throw new TypeError(
        `${here}: set \`issuer\` (or \`issuerUrl\`): it picks this issuer's keys`,
      );
    }
    for (const iss of provider.issuers) {
      if (byIssuer.has(iss)) {
        throw new TypeError(`${here}: the issuer ${iss} is configured twice`);
      }
      byIssuer.set(iss, provider);
    }
  });
  // The provider for `iss`, or the reason there is none.
  const select = (iss: unknown): Provider | AuthErrorCode => {
    const provider = typeof iss === "string" ? byIssuer.get(iss) : undefined;
    if (provider === undefined) {
      return iss === undefined ? "ERR_CLAIM_MISSING" : "ERR_ISSUER_INVALID";
    }
    return provider;
  };
  return Object.assign(select, { providers: [...new Set(byIssuer.values())] });
}

/** The options among `names` that `options` gives a value other than `undefined`. */
function definedOptions<T extends object>(
  options: T,
  names: readonly (keyof T & string)[],
): Partial<T> {
  const defined: Partial<T> = {};
  for (const name of names) {
    if (options[name] !== undefined) {
      defined[name] = options[name];
    }
  }
  return defined;
}

function remoteLimits(options: RemoteKeysOptions, where: string): RemoteKeySetLimits {
  const ms = (value: Duration | undefined, name: string, fallback: number) => {
    const seconds = parseDuration(value, `${where}.${name}`);
    return seconds === undefined ? fallback : seconds * 1000;
  };
  const maxBodyBytes = options.maxBodySize ?? defaultRemoteLimits.maxBodyBytes;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1024) {
    throw new TypeError(`${where}.maxBodySize must be an integer of at least 1024 (bytes)`);
  }
  return {
    timeoutMs: ms(options.timeout, "timeout", defaultRemoteLimits.timeoutMs),
    maxBodyBytes,
    cooldownMs: ms(options.cooldown, "cooldown", defaultRemoteLimits.cooldownMs),
    maxAgeMs: ms(options.maxAge, "maxAge", defaultRemoteLimits.maxAgeMs),
    staleIfErrorMs: ms(options.staleIfError, "staleIfError", defaultRemoteLimits.staleIfErrorMs),
  };
}

function createCache(options: TokenCacheOptions | false | undefined, where: string) {
  if (options === false) {
    return undefined;
  }
  for (const key of ["maxEntries", "maxBytes", "maxTtl", "maxRefusals"] as const) {
    const value = options?.[key];
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
      throw new TypeError(`${where}.${key} must be a whole number >= 0 (or set cache: false)`);
    }
  }
  return new TokenCache(options);
}

/**
 * The refusals that hold for a token string forever, whatever the keys and
 * the time: those the refusal cache remembers. (Not a token not yet valid,
 * nor anything decided by a key, a signature or `isRevoked`.)
 */
const lastingRefusals: ReadonlySet<AuthErrorCode> = new Set<AuthErrorCode>([
  "ERR_TOKEN_MALFORMED",
  "ERR_ALGORITHM_NOT_ALLOWED",
  "ERR_TYPE_INVALID",
  "ERR_CLAIM_MISSING",
  "ERR_CLAIM_INVALID",
  "ERR_TOKEN_EXPIRED",
  "ERR_TOKEN_TOO_OLD",
  "ERR_ISSUER_INVALID",
  "ERR_AUDIENCE_INVALID",
  "ERR_LIFETIME_TOO_LONG",
]);

/** The most memory the remembered refusals may take, estimated in bytes. */
const refusalCacheBytes = 2 * 1024 * 1024;

/** The cache of refused tokens and their reasons (options checked by createCache). */
function createRefusalCache(options: TokenCacheOptions | false | undefined) {
  const maxEntries = options === false ? 0 : (options?.maxRefusals ?? 1000);
  if (maxEntries === 0) {
    return undefined;
  }
  return new TokenCache<AuthErrorCode>({ maxEntries, maxBytes: refusalCacheBytes });
}

/**
 * Maps an error of jose's signature check to our stable code; unknown errors
 * fail closed. (Claims are checked before jose sees the token.)
 */
function codeOf(err: unknown): AuthErrorCode {
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return "ERR_ALGORITHM_NOT_ALLOWED";
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return "ERR_SIGNATURE_INVALID";
  }
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return "ERR_KEY_NOT_FOUND";
  }
  if (err instanceof errors.JWSInvalid || err instanceof errors.JOSENotSupported) {
    return "ERR_TOKEN_MALFORMED";
  }
  return "ERR_TOKEN_INVALID";
}
