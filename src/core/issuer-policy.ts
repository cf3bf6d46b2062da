import type { JWTPayload, VerifyOptions } from "jose";
import type { JwtClaims } from "./claims.js";
import { type Duration, parseDuration } from "./duration.js";
import { refusal } from "./errors.js";
import { type KeySourceOptions, resolveKeySource, type VerificationKey } from "./key-source.js";
import type { RemoteKeySetLimits } from "./remote-jwks.js";
import type { Telemetry } from "./telemetry.js";

/**
 * ClaimPolicyOptions are the rules a token's claims must meet. At the top
 * level of the options they apply to every issuer; an entry of `issuers` may
 * override them for its own tokens.
 */
export interface ClaimPolicyOptions {
  /** The exact `iss` to accept, or a list. Defaults to `issuerUrl` when that is given. */
  issuer?: string | readonly string[];
  /**
   * The `aud` this server answers to, or a list; the token must name one.
   * Required with keys from `jwksUrl` or `issuerUrl` (an identity provider
   * signs tokens for all of its APIs with the same keys; RFC 8725, 3.9):
   * `false` accepts any audience on purpose.
   */
  audience?: string | readonly string[] | false;
  /** The required `typ` header, e.g. `"at+jwt"` (`application/` prefix ignored, RFC 8725). */
  typ?: string;
  /** Claims that must be present, in addition to `exp`, which always is. */
  requiredClaims?: readonly string[];
  /** Refuse tokens whose `iat` is older than this (seconds or `"15m"`); `iat` is then required. */
  maxTokenAge?: Duration;
  /** Refuse tokens whose lifetime, `exp - iat`, is longer (seconds or `"1d"`); `iat` is then required. */
  maxLifetime?: Duration;
  /**
   * `"rfc9068"`: JWT access tokens as RFC 9068 defines them: `typ` must be
   * `at+jwt`, and `iss`, `exp`, `aud`, `sub`, `client_id`, `iat` and `jti` are required.
   */
  profile?: "rfc9068";
}

/** One issuer: where its keys come from and what its tokens must meet. */
export interface IssuerOptions extends KeySourceOptions, ClaimPolicyOptions {}

/**
 * IssuerPolicy is one issuer's options, checked and compiled: its keys and
 * algorithms, and what its tokens' header and claims must meet.
 */
export interface IssuerPolicy {
  readonly key: VerificationKey;
  readonly algorithms: readonly string[];
  readonly issuers: readonly string[] | undefined;
  readonly warmUp: (() => Promise<void>) | undefined;
  /** For jose's `compactVerify`, which checks the signature and the `alg` against these. */
  readonly verifyOptions: VerifyOptions;
  /**
   * Checks the header and every claim of the policy (RFC 7519, and RFC 9068
   * with that profile), before the signature: what fails here costs no crypto
   * and no key fetch. Throws the AuthError that refuses the token.
   */
  checkClaims(header: Readonly<Record<string, unknown>>, payload: JWTPayload, nowSec: number): void;
  /** When a verified token becomes too old for `maxTokenAge` (seconds since the epoch), if ever. */
  staleAt(claims: JwtClaims): number | undefined;
}

const rfc9068Claims = ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"];

/**
 * createIssuerPolicy checks one issuer's options and compiles them. Every
 * mistake throws a `TypeError` that names the option and says how to fix it.
 */
export function createIssuerPolicy(
  options: IssuerOptions,
  clockTolerance: number,
  limits: RemoteKeySetLimits,
  telemetry: Telemetry | undefined,
): IssuerPolicy {
  const source = resolveKeySource(options, limits, telemetry);
  const issuers = strings(options.issuer ?? options.issuerUrl, "issuer");
  const remote = options.jwksUrl !== undefined || options.issuerUrl !== undefined;
  if (options.audience === undefined && remote) {
    throw new TypeError(
      `set \`audience\` to the \`aud\` of this API: keys from jwksUrl or issuerUrl also sign the provider's tokens for other APIs (or audience: false to accept any audience)`,
    );
  }
  const audience = options.audience === false ? undefined : strings(options.audience, "audience");
  const maxTokenAge = parseDuration(options.maxTokenAge, "maxTokenAge");
  const maxLifetime = parseDuration(options.maxLifetime, "maxLifetime");
  let typ = options.typ;
  if (typ !== undefined && (typeof typ !== "string" || typ === "")) {
    throw new TypeError(`typ must be a non-empty string such as "at+jwt"`);
  }
  const required = new Set([
    "exp",
    ...(strings(options.requiredClaims ?? [], "requiredClaims", true) ?? []),
  ]);
  if (options.profile !== undefined) {
    if (options.profile !== "rfc9068") {
      throw new TypeError(`profile must be "rfc9068" or left out`);
    }
    if (typ !== undefined && typ.replace(/^application\//, "") !== "at+jwt") {
      throw new TypeError(`profile "rfc9068" requires typ "at+jwt"; drop the typ option`);
    }
    typ = "at+jwt";
    for (const claim of rfc9068Claims) {
      required.add(claim);
    }
  }
  if (maxLifetime !== undefined || maxTokenAge !== undefined) {
    required.add("iat");
  }
  if (issuers !== undefined) {
    required.add("iss");
  }
  if (audience !== undefined) {
    required.add("aud");
  }
  const requiredClaims = [...required];
  const expectedTyp = typ === undefined ? undefined : normalizeTyp(typ);
  return {
    key: source.key,
    algorithms: source.algorithms,
    issuers,
    warmUp: source.warmUp,
    verifyOptions: { algorithms: [...source.algorithms] },
    checkClaims(header, payload, nowSec) {
      const { alg } = header;
      if (typeof alg !== "string" || !source.algorithms.includes(alg)) {
        throw refusal("ERR_ALGORITHM_NOT_ALLOWED");
      }
      // RFC 7797's unencoded payload has no place in a JWT.
      if (header.b64 !== undefined && header.b64 !== true) {
        throw refusal("ERR_TOKEN_MALFORMED");
      }
      if (
        expectedTyp !== undefined &&
        (typeof header.typ !== "string" || normalizeTyp(header.typ) !== expectedTyp)
      ) {
        throw refusal("ERR_TYPE_INVALID");
      }
      for (const claim of requiredClaims) {
        if (!Object.hasOwn(payload, claim)) {
          throw refusal("ERR_CLAIM_MISSING");
        }
      }
      const { exp, iss, aud, nbf, iat } = payload;
      if (!isNumericDate(exp)) {
        throw refusal("ERR_CLAIM_INVALID");
      }
      if (exp <= nowSec - clockTolerance) {
        throw refusal("ERR_TOKEN_EXPIRED");
      }
      // A missing iss or aud was refused above: both are required when configured.
      if (issuers !== undefined && (typeof iss !== "string" || !issuers.includes(iss))) {
        throw refusal("ERR_ISSUER_INVALID");
      }
      if (audience !== undefined && !audienceMatches(aud, audience)) {
        throw refusal("ERR_AUDIENCE_INVALID");
      }
      if (
        (nbf !== undefined && !isNumericDate(nbf)) ||
        (iat !== undefined && !isNumericDate(iat))
      ) {
        throw refusal("ERR_CLAIM_INVALID");
      }
      if (
        (nbf !== undefined && nbf > nowSec + clockTolerance) ||
        (iat !== undefined && iat > nowSec + clockTolerance)
      ) {
        throw refusal("ERR_TOKEN_NOT_YET_VALID");
      }
      if (maxTokenAge !== undefined && nowSec - (iat as number) - clockTolerance > maxTokenAge) {
        throw refusal("ERR_TOKEN_TOO_OLD");
      }
      if (maxLifetime !== undefined && exp - (iat as number) > maxLifetime) {
        throw refusal("ERR_LIFETIME_TOO_LONG");
      }
    },
    staleAt(claims) {
      return maxTokenAge === undefined ? undefined : (claims.iat as number) + maxTokenAge;
    },
  };
}

/** Whether a NumericDate claim's value is valid: a finite number. */
function isNumericDate(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** `typ` compares without case, a value without "/" as if `application/` led it (RFC 7515, 4.1.9). */
function normalizeTyp(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.includes("/") ? lower : `application/${lower}`;
}

function audienceMatches(aud: unknown, accepted: readonly string[]): boolean {
  if (typeof aud === "string") {
    return accepted.includes(aud);
  }
  return Array.isArray(aud) && aud.some((a) => typeof a === "string" && accepted.includes(a));
}

function strings(
  value: unknown,
  option: string,
  allowEmpty = false,
): readonly string[] | undefined {
  if (value === undefined) {
    return undefined;
  }
  const list: unknown = typeof value === "string" ? [value] : value;
  if (
    !Array.isArray(list) ||
    (!allowEmpty && list.length === 0) ||
    list.some((s) => typeof s !== "string" || s === "")
  ) {
    throw new TypeError(`${option} must be a non-empty string or an array of them`);
  }
  return list as string[];
}
