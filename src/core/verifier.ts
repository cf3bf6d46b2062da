import { decodeJwt, decodeProtectedHeader, errors, jwtVerify } from "jose";
import { defaultMaxTokenSize } from "./bearer-token.js";
import { freezeClaims, type JwtClaims } from "./claims.js";
import { type Duration, parseDuration } from "./duration.js";
import { AuthError, type AuthErrorCode, safeCause } from "./errors.js";
import { type KeySourceOptions, resolveKeySource } from "./key-source.js";

/**
 * VerifierOptions are the key source plus the rules every token must meet.
 */
export interface VerifierOptions extends KeySourceOptions {
  /** The exact `iss` to accept, or a list of them. Strongly recommended. */
  issuer?: string | readonly string[];
  /** The `aud` this server answers to, or a list; the token must name one. Strongly recommended. */
  audience?: string | readonly string[];
  /**
   * Clock skew tolerated on `exp`, `nbf` and `iat`: seconds, or a string like
   * `"30s"`. Default 5 seconds, at most 5 minutes.
   */
  clockTolerance?: Duration;
  /** Refuse tokens whose `iat` is older than this (seconds or `"15m"`); `iat` is then required. */
  maxTokenAge?: Duration;
  /** The required `typ` header, e.g. `"at+jwt"` (compared as RFC 8725 says, without `application/`). */
  typ?: string;
  /** Claims that must be present, in addition to `exp`, which always is. */
  requiredClaims?: readonly string[];
  /** Longest token accepted, in characters, checked before any decoding. Default 8192. */
  maxTokenSize?: number;
}

/**
 * Verifier checks a compact JWT against one key source and claim policy.
 */
export interface Verifier {
  /**
   * verify resolves to the token's claims, deeply frozen, or rejects with an
   * {@link AuthError}; it never rejects with anything else.
   */
  verify(token: string): Promise<JwtClaims>;
  /** The longest token the verifier accepts, for header parsing. */
  readonly maxTokenSize: number;
}

const defaultClockTolerance = 5;
const maxClockTolerance = 300;

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
export function createVerifier(options: VerifierOptions, where = "createVerifier"): Verifier {
  const { key, algorithms } = resolveKeySource(options, where);
  const clockTolerance =
    parseDuration(options.clockTolerance, `${where}: clockTolerance`) ?? defaultClockTolerance;
  if (clockTolerance > maxClockTolerance) {
    throw new TypeError(
      `${where}: clockTolerance is ${clockTolerance}s; keep it at most ${maxClockTolerance}s`,
    );
  }
  const maxTokenAge = parseDuration(options.maxTokenAge, `${where}: maxTokenAge`);
  const maxTokenSize = options.maxTokenSize ?? defaultMaxTokenSize;
  if (!Number.isSafeInteger(maxTokenSize) || maxTokenSize < 64) {
    throw new TypeError(`${where}: maxTokenSize must be an integer of at least 64 (characters)`);
  }
  const issuer = checkStrings(options.issuer, `${where}: issuer`);
  const audience = checkStrings(options.audience, `${where}: audience`);
  if (options.typ !== undefined && (typeof options.typ !== "string" || options.typ === "")) {
    throw new TypeError(`${where}: typ must be a non-empty string such as "at+jwt"`);
  }
  const requiredClaims = checkStrings(
    options.requiredClaims ?? [],
    `${where}: requiredClaims`,
    true,
  );
  const joseOptions = {
    algorithms: [...algorithms],
    clockTolerance,
    requiredClaims: [...new Set(["exp", ...(requiredClaims ?? [])])],
    ...(issuer === undefined ? {} : { issuer }),
    ...(audience === undefined ? {} : { audience }),
    ...(maxTokenAge === undefined ? {} : { maxTokenAge }),
    ...(options.typ === undefined ? {} : { typ: options.typ }),
  };
  return {
    maxTokenSize,
    async verify(token) {
      if (typeof token !== "string" || token.length > maxTokenSize) {
        throw new AuthError(
          typeof token === "string" ? "ERR_TOKEN_TOO_LARGE" : "ERR_TOKEN_MALFORMED",
        );
      }
      let payload: object;
      try {
        // Refuse what can never verify before spending a signature check on it.
        decodeJwt(token);
        const { alg } = decodeProtectedHeader(token);
        if (typeof alg !== "string" || !algorithms.includes(alg)) {
          throw new AuthError("ERR_ALGORITHM_NOT_ALLOWED");
        }
        // jose picks the overload from the key's type; the union is fine at run time.
        ({ payload } = await jwtVerify(token, key as Uint8Array, joseOptions));
      } catch (err) {
        if (err instanceof AuthError) {
          throw err;
        }
        throw new AuthError(codeOf(err), { cause: safeCause(err) });
      }
      const iat = (payload as { iat?: unknown }).iat;
      if (typeof iat === "number" && iat > Date.now() / 1000 + clockTolerance) {
        throw new AuthError("ERR_TOKEN_NOT_YET_VALID");
      }
      return freezeClaims(payload);
    },
  };
}

function checkStrings(
  value: string | readonly string[] | undefined,
  where: string,
  allowEmpty = false,
) {
  if (value === undefined) {
    return undefined;
  }
  const list = typeof value === "string" ? [value] : value;
  if (
    !Array.isArray(list) ||
    (!allowEmpty && list.length === 0) ||
    list.some((s) => typeof s !== "string" || s === "")
  ) {
    throw new TypeError(`${where} must be a non-empty string or an array of them`);
  }
  return typeof value === "string" ? value : [...list];
}

/** Maps an error of jose to our stable code; unknown errors fail closed. */
function codeOf(err: unknown): AuthErrorCode {
  if (err instanceof errors.JWTExpired) {
    return err.claim === "iat" ? "ERR_TOKEN_TOO_OLD" : "ERR_TOKEN_EXPIRED";
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === "missing") {
      return "ERR_CLAIM_MISSING";
    }
    switch (err.claim) {
      case "iss":
        return "ERR_ISSUER_INVALID";
      case "aud":
        return "ERR_AUDIENCE_INVALID";
      case "typ":
        return "ERR_TYPE_INVALID";
      case "nbf":
      case "iat":
        return err.reason === "check_failed" ? "ERR_TOKEN_NOT_YET_VALID" : "ERR_CLAIM_INVALID";
      default:
        return "ERR_CLAIM_INVALID";
    }
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return "ERR_ALGORITHM_NOT_ALLOWED";
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return "ERR_SIGNATURE_INVALID";
  }
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return "ERR_KEY_NOT_FOUND";
  }
  if (
    err instanceof errors.JWSInvalid ||
    err instanceof errors.JWTInvalid ||
    err instanceof errors.JOSENotSupported
  ) {
    return "ERR_TOKEN_MALFORMED";
  }
  return "ERR_TOKEN_INVALID";
}
