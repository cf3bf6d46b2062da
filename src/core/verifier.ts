import { compactVerify, errors } from "jose";
import { defaultMaxTokenSize } from "./bearer-token.js";
import { freezeParsedClaims, type JwtClaims } from "./claims.js";
import { decodeSegment, isCompactJws } from "./compact-jws.js";
import { type Duration, parseDuration } from "./duration.js";
import { AuthError, type AuthErrorCode, asAuthError, refusal, safeCause } from "./errors.js";
import {
  type ClaimPolicyOptions,
  createIssuerPolicy,
  type IssuerOptions,
  type IssuerPolicy,
} from "./issuer-policy.js";
import type { KeySourceOptions } from "./key-source.js";
import {
  assertKnownOptions,
  definedOptions,
  inOptionsOf,
  namesOf,
  type OptionNames,
} from "./options.js";
import { defaultRemoteLimits, type RemoteKeySetLimits } from "./remote-jwks.js";
import { checkRevocations, type Revocations } from "./revocations.js";
import { checkTelemetry, type Telemetry } from "./telemetry.js";
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
  /**
   * A revocation list asked on every call, cache hits included, before
   * `isRevoked` (both are consulted): `redisRevocations()` from
   * `connect-jwt/redis` shares one across replicas. When the list cannot be
   * trusted, calls are refused as unavailable (`ERR_REVOCATION_UNAVAILABLE`).
   */
  revocations?: Revocations;
  /**
   * Where to report decisions, token cache lookups and key fetches:
   * `openTelemetry()` from `connect-jwt/otel`, or a {@link Telemetry} of your
   * own. Without it, nothing is measured.
   */
  telemetry?: Telemetry;
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

const maxClockTolerance = 60;

/** The claim policy's options: an entry of `issuers` inherits those it leaves out. */
const claimPolicyOptionNames: OptionNames<ClaimPolicyOptions> = {
  issuer: true,
  audience: true,
  typ: true,
  requiredClaims: true,
  maxTokenAge: true,
  maxLifetime: true,
  profile: true,
};

const keySourceOptionNames: OptionNames<KeySourceOptions> = {
  secret: true,
  publicKey: true,
  jwks: true,
  jwksUrl: true,
  issuerUrl: true,
  algorithms: true,
};

/** Every option of an entry of `issuers`. */
const issuerOptionNames: OptionNames<IssuerOptions> = {
  ...keySourceOptionNames,
  ...claimPolicyOptionNames,
};

/** Every option of {@link createVerifier}, for the check of unknown options. */
export const verifierOptionNames: OptionNames<VerifierOptions> = {
  ...issuerOptionNames,
  issuers: true,
  clockTolerance: true,
  maxTokenSize: true,
  remoteKeys: true,
  cache: true,
  isRevoked: true,
  revocations: true,
  telemetry: true,
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
  return inOptionsOf("createVerifier", () => {
    if (typeof options !== "object" || options === null) {
      throw new TypeError("pass an options object with a key source, e.g. { jwks, algorithms }");
    }
    assertKnownOptions(options, namesOf(verifierOptionNames));
    return compileVerifier(options);
  });
}

/**
 * compileVerifier is {@link createVerifier} for options already checked for
 * unknown names: createJwtAuth's, which hold more than a verifier's. Its
 * `TypeError`s name the option, and the caller says whose options they are.
 */
export function compileVerifier(options: VerifierOptions): Verifier {
  const clockTolerance = parseDuration(options.clockTolerance, "clockTolerance") ?? 5;
  if (clockTolerance > maxClockTolerance) {
    throw new TypeError(
      `clockTolerance is ${clockTolerance}s; keep it at most ${maxClockTolerance}s`,
    );
  }
  const maxTokenSize = options.maxTokenSize ?? defaultMaxTokenSize;
  if (!Number.isSafeInteger(maxTokenSize) || maxTokenSize < 64) {
    throw new TypeError("maxTokenSize must be an integer of at least 64 (characters)");
  }
  const limits = remoteLimits(options.remoteKeys ?? {});
  const cache = createCache(options.cache);
  const refusals = createRefusalCache(options.cache);
  const { isRevoked } = options;
  if (isRevoked !== undefined && typeof isRevoked !== "function") {
    throw new TypeError("isRevoked must be a function (claims) => boolean");
  }
  const revocations = checkRevocations(options.revocations);
  const telemetry = checkTelemetry(options.telemetry);
  const policies = compileIssuerPolicies(options, clockTolerance, limits, telemetry);

  async function verify(token: string): Promise<JwtClaims> {
    if (typeof token !== "string") {
      throw refusal("ERR_TOKEN_MALFORMED");
    }
    if (token.length > maxTokenSize) {
      throw refusal("ERR_TOKEN_TOO_LARGE");
    }
    const nowSec = Date.now() / 1000;
    const cached = cache?.get(token, nowSec, clockTolerance);
    // Refusals are stored without an exp: never "expired", only dropped by maxTtl.
    const refused = cached === undefined ? refusals?.get(token, nowSec, clockTolerance) : undefined;
    if (cache !== undefined) {
      telemetry?.cacheLookup(cached !== undefined || refused !== undefined);
    }
    if (cached === "expired") {
      throw refusal("ERR_TOKEN_EXPIRED");
    }
    if (cached !== undefined) {
      return checkRevoked(cached);
    }
    if (refused !== undefined && refused !== "expired") {
      throw refusal(refused);
    }
    let verified: { claims: JwtClaims; policy: IssuerPolicy };
    try {
      verified = await verifyToken(token, nowSec);
    } catch (err) {
      const error = asAuthError(err);
      if (permanentRefusals.has(error.code)) {
        refusals?.admitOnSecondSight(token, error.code, Number.POSITIVE_INFINITY);
      }
      throw error;
    }
    const claims = await checkRevoked(verified.claims);
    cache?.admitOnSecondSight(token, claims, claims.exp as number, verified.policy.staleAt(claims));
    return claims;
  }

  /**
   * Verifies a token the cache does not have. Everything that needs no key
   * comes first: what can never verify (malformed, wrong alg, expired, wrong
   * iss or aud...) costs no signature check and no key fetch.
   */
  async function verifyToken(token: string, nowSec: number) {
    // The same strict syntax as a header's token: verify() may be called directly.
    if (!isCompactJws(token)) {
      throw refusal("ERR_TOKEN_MALFORMED");
    }
    // The claims decoded here are those the signature then covers: the
    // payload segment is canonical base64url (isCompactJws), so jose
    // verifies the very bytes decoded.
    const [header = "", payload = ""] = token.split(".", 2);
    const unverified = decodeSegment(payload, "ERR_TOKEN_MALFORMED");
    const policy = policies.for(unverified.iss);
    policy.checkClaims(decodeSegment(header, "ERR_TOKEN_MALFORMED"), unverified, nowSec);
    try {
      // jose picks the overload from the key's type; the union is fine at run time.
      await compactVerify(token, policy.key as Uint8Array, policy.verifyOptions);
    } catch (err) {
      throw asAuthError(err, codeOf(err));
    }
    // The payload was parsed for this call alone: frozen where it is.
    return { claims: freezeParsedClaims(unverified), policy };
  }

  async function checkRevoked(claims: JwtClaims): Promise<JwtClaims> {
    if (revocations === undefined && isRevoked === undefined) {
      return claims;
    }
    let revoked: boolean;
    try {
      revoked =
        revocations?.isRevoked(claims) === true ||
        (isRevoked !== undefined && (await isRevoked(claims)));
    } catch (err) {
      throw new AuthError("ERR_REVOCATION_UNAVAILABLE", { cause: safeCause(err) });
    }
    if (revoked) {
      throw refusal("ERR_TOKEN_REVOKED");
    }
    return claims;
  }

  return {
    maxTokenSize,
    clockTolerance,
    verify,
    async warmUp() {
      await Promise.all(policies.all.map((p) => p.warmUp?.()));
    },
  };
}

/** The compiled policies of the issuers, and the one a token's unverified `iss` names. */
interface IssuerPolicies {
  readonly all: readonly IssuerPolicy[];
  /** The policy for a token's `iss`; throws the refusal when no issuer has that name. */
  for(iss: unknown): IssuerPolicy;
}

function compileIssuerPolicies(
  options: VerifierOptions,
  clockTolerance: number,
  limits: RemoteKeySetLimits,
  telemetry: Telemetry | undefined,
): IssuerPolicies {
  if (options.issuers === undefined) {
    const policy = createIssuerPolicy(options, clockTolerance, limits, telemetry);
    return { all: [policy], for: () => policy };
  }
  const stray = [...namesOf(keySourceOptionNames), "issuer" as const].filter(
    (k) => options[k] !== undefined,
  );
  if (stray.length > 0) {
    throw new TypeError(
      `with \`issuers\`, give ${stray.join(", ")} inside each issuer, not at the top level`,
    );
  }
  if (!Array.isArray(options.issuers) || options.issuers.length === 0) {
    throw new TypeError("issuers must be a non-empty array of { issuer, <key source>, ... }");
  }
  // What an issuer leaves out, or leaves undefined, it inherits: an option
  // read from an unset environment variable never lifts a check.
  const inherited = definedOptions(options, namesOf(claimPolicyOptionNames));
  const byIssuer = new Map<string, IssuerPolicy>();
  options.issuers.forEach((issuerOptions: IssuerOptions, i) => {
    inOptionsOf(`issuers[${i}]`, () => {
      if (typeof issuerOptions !== "object" || issuerOptions === null) {
        throw new TypeError("must be an object: { issuer, <key source>, ... }");
      }
      assertKnownOptions(issuerOptions, namesOf(issuerOptionNames));
      const own = definedOptions(issuerOptions, namesOf(issuerOptionNames));
      const policy = createIssuerPolicy(
        { ...inherited, ...own },
        clockTolerance,
        limits,
        telemetry,
      );
      if (policy.issuers === undefined) {
        throw new TypeError("set `issuer` (or `issuerUrl`): it picks this issuer's keys");
      }
      for (const iss of policy.issuers) {
        if (byIssuer.has(iss)) {
          throw new TypeError(`the issuer ${iss} is configured twice`);
        }
        byIssuer.set(iss, policy);
      }
    });
  });
  return {
    all: [...new Set(byIssuer.values())],
    for(iss) {
      const policy = typeof iss === "string" ? byIssuer.get(iss) : undefined;
      if (policy === undefined) {
        throw refusal(iss === undefined ? "ERR_CLAIM_MISSING" : "ERR_ISSUER_INVALID");
      }
      return policy;
    },
  };
}

function remoteLimits(options: RemoteKeysOptions): RemoteKeySetLimits {
  const ms = (value: Duration | undefined, name: string, fallback: number) => {
    const seconds = parseDuration(value, `remoteKeys.${name}`);
    return seconds === undefined ? fallback : seconds * 1000;
  };
  const maxBodyBytes = options.maxBodySize ?? defaultRemoteLimits.maxBodyBytes;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1024) {
    throw new TypeError(`remoteKeys.maxBodySize must be an integer of at least 1024 (bytes)`);
  }
  return {
    timeoutMs: ms(options.timeout, "timeout", defaultRemoteLimits.timeoutMs),
    maxBodyBytes,
    cooldownMs: ms(options.cooldown, "cooldown", defaultRemoteLimits.cooldownMs),
    maxAgeMs: ms(options.maxAge, "maxAge", defaultRemoteLimits.maxAgeMs),
    staleIfErrorMs: ms(options.staleIfError, "staleIfError", defaultRemoteLimits.staleIfErrorMs),
  };
}

function createCache(options: TokenCacheOptions | false | undefined) {
  if (options === false) {
    return undefined;
  }
  for (const key of ["maxEntries", "maxBytes", "maxTtl", "maxRefusals"] as const) {
    const value = options?.[key];
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
      throw new TypeError(`cache.${key} must be a whole number >= 0 (or set cache: false)`);
    }
  }
  return new TokenCache(options);
}

/**
 * The refusals that hold for a token string forever, whatever the keys and
 * the time: those the refusal cache remembers. (Not a token not yet valid,
 * nor anything decided by a key, a signature or `isRevoked`.)
 */
const permanentRefusals: ReadonlySet<AuthErrorCode> = new Set<AuthErrorCode>([
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
