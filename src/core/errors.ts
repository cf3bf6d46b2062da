/**
 * AuthErrorCode is the stable reason a call was refused. Switch on it in logs
 * and metrics; it never changes meaning between versions.
 *
 * | code | what happened |
 * |---|---|
 * | `ERR_TOKEN_MISSING` | no `authorization` header, or a scheme other than `Bearer` |
 * | `ERR_AUTHORIZATION_MALFORMED` | `Bearer` without a token, several values, stray whitespace |
 * | `ERR_TOKEN_TOO_LARGE` | the token is longer than `maxTokenSize` |
 * | `ERR_TOKEN_MALFORMED` | not a compact JWS, or its header or payload do not decode |
 * | `ERR_ALGORITHM_NOT_ALLOWED` | the token's `alg` is not in `algorithms` |
 * | `ERR_KEY_NOT_FOUND` | no configured key matches the token's `kid` and `alg` |
 * | `ERR_SIGNATURE_INVALID` | the signature does not verify |
 * | `ERR_TOKEN_EXPIRED` | `exp` has passed (beyond the clock tolerance) |
 * | `ERR_TOKEN_NOT_YET_VALID` | `nbf` or `iat` lies in the future |
 * | `ERR_TOKEN_TOO_OLD` | `iat` is older than `maxTokenAge` |
 * | `ERR_ISSUER_INVALID` | `iss` is not the configured issuer |
 * | `ERR_AUDIENCE_INVALID` | `aud` does not name the configured audience |
 * | `ERR_TYPE_INVALID` | the `typ` header is not the configured one |
 * | `ERR_CLAIM_MISSING` | a required claim is absent |
 * | `ERR_CLAIM_INVALID` | a claim has the wrong type or value |
 * | `ERR_LIFETIME_TOO_LONG` | `exp - iat` exceeds `maxLifetime` |
 * | `ERR_TOKEN_REVOKED` | `revocations` or the `isRevoked` hook said so |
 * | `ERR_TOKEN_INVALID` | the token was refused for a reason not listed above |
 * | `ERR_INSUFFICIENT_SCOPE` | the token is valid but lacks a scope the method requires |
 * | `ERR_ACCESS_DENIED` | the token is valid but fails the method's roles, claims or checks |
 * | `ERR_RULE_FAILED` | the method's check or CEL expression failed while evaluating |
 * | `ERR_KEYS_UNAVAILABLE` | the keys could not be loaded; the token was not judged |
 * | `ERR_REVOCATION_UNAVAILABLE` | `revocations` or the `isRevoked` hook failed; the token was not judged |
 * | `ERR_DPOP_BINDING_REQUIRED` | a DPoP-bound token (`cnf.jkt`) came as `Bearer`, or `dpop.required` and no DPoP |
 * | `ERR_DPOP_PROOF_MISSING` | `Authorization: DPoP` without a `DPoP` proof header |
 * | `ERR_DPOP_PROOF_MALFORMED` | several proofs, not a compact JWS, a `crit` header, or a required claim missing |
 * | `ERR_DPOP_PROOF_TOO_LARGE` | the proof is longer than `dpop.maxProofSize` |
 * | `ERR_DPOP_TYPE_INVALID` | the proof's `typ` is not `dpop+jwt` |
 * | `ERR_DPOP_ALGORITHM_NOT_ALLOWED` | the proof's `alg` is not in `dpop.algorithms` |
 * | `ERR_DPOP_KEY_INVALID` | the proof's `jwk` is not a public asymmetric key fit for its `alg` |
 * | `ERR_DPOP_METHOD_MISMATCH` | `htm` is not the request's HTTP method |
 * | `ERR_DPOP_URL_MISMATCH` | `htu` is not one of `dpop.origins` plus the request's path |
 * | `ERR_DPOP_PROOF_EXPIRED` | the proof's `iat` is older than `dpop.proofMaxAge` |
 * | `ERR_DPOP_PROOF_NOT_YET_VALID` | the proof's `iat` lies in the future |
 * | `ERR_DPOP_ATH_MISMATCH` | `ath` is not the hash of the token the call carries |
 * | `ERR_DPOP_KEY_MISMATCH` | the token is not bound (`cnf.jkt`) to the proof's key |
 * | `ERR_DPOP_SIGNATURE_INVALID` | the proof's signature does not verify |
 * | `ERR_DPOP_REPLAYED` | this proof (key and `jti`) was used before |
 * | `ERR_DPOP_NONCE_REQUIRED` | nonces are on and the proof's `nonce` is missing, stale or not ours |
 * | `ERR_DPOP_REPLAY_UNAVAILABLE` | the replay store failed or is full; the proof was not judged |
 */
export type AuthErrorCode =
  | "ERR_TOKEN_MISSING"
  | "ERR_AUTHORIZATION_MALFORMED"
  | "ERR_TOKEN_TOO_LARGE"
  | "ERR_TOKEN_MALFORMED"
  | "ERR_ALGORITHM_NOT_ALLOWED"
  | "ERR_KEY_NOT_FOUND"
  | "ERR_SIGNATURE_INVALID"
  | "ERR_TOKEN_EXPIRED"
  | "ERR_TOKEN_NOT_YET_VALID"
  | "ERR_TOKEN_TOO_OLD"
  | "ERR_ISSUER_INVALID"
  | "ERR_AUDIENCE_INVALID"
  | "ERR_TYPE_INVALID"
  | "ERR_CLAIM_MISSING"
  | "ERR_CLAIM_INVALID"
  | "ERR_LIFETIME_TOO_LONG"
  | "ERR_TOKEN_REVOKED"
  | "ERR_TOKEN_INVALID"
  | "ERR_INSUFFICIENT_SCOPE"
  | "ERR_ACCESS_DENIED"
  | "ERR_RULE_FAILED"
  | "ERR_KEYS_UNAVAILABLE"
  | "ERR_REVOCATION_UNAVAILABLE"
  | "ERR_DPOP_BINDING_REQUIRED"
  | "ERR_DPOP_PROOF_MISSING"
  | "ERR_DPOP_PROOF_MALFORMED"
  | "ERR_DPOP_PROOF_TOO_LARGE"
  | "ERR_DPOP_TYPE_INVALID"
  | "ERR_DPOP_ALGORITHM_NOT_ALLOWED"
  | "ERR_DPOP_KEY_INVALID"
  | "ERR_DPOP_METHOD_MISMATCH"
  | "ERR_DPOP_URL_MISMATCH"
  | "ERR_DPOP_PROOF_EXPIRED"
  | "ERR_DPOP_PROOF_NOT_YET_VALID"
  | "ERR_DPOP_ATH_MISMATCH"
  | "ERR_DPOP_KEY_MISMATCH"
  | "ERR_DPOP_SIGNATURE_INVALID"
  | "ERR_DPOP_REPLAYED"
  | "ERR_DPOP_NONCE_REQUIRED"
  | "ERR_DPOP_REPLAY_UNAVAILABLE";

/**
 * BearerChallenge is the `error` a refusal reports in its `WWW-Authenticate`
 * challenge (RFC 6750, and RFC 9449 for DPoP): none when no credentials came,
 * `invalid_request` for a malformed `authorization` header, `invalid_token`
 * for a token that does not verify, `insufficient_scope` for a valid token the
 * method's rule refuses, `invalid_dpop_proof` for a DPoP proof that does not
 * verify, `use_dpop_nonce` when the proof must carry the server's nonce.
 */
export type BearerChallenge =
  | "none"
  | "invalid_request"
  | "invalid_token"
  | "insufficient_scope"
  | "invalid_dpop_proof"
  | "use_dpop_nonce";

/**
 * AuthError is the one error type the verifier throws. Its `message` is a fixed,
 * generic sentence that is safe to show a client: it never holds the token, a
 * claim value or a message of the underlying JOSE library. The original error,
 * if any, is kept in `cause` for server-side diagnosis only.
 *
 * Tell refusals apart by `code`.
 *
 * @example
 * ```ts
 * try {
 *   await auth.verify(token);
 * } catch (err) {
 *   if (err instanceof AuthError && err.code === "ERR_TOKEN_EXPIRED") {
 *     // ask the client to refresh
 *   }
 * }
 * ```
 */
export class AuthError extends Error {
  /** Always `"AuthError"`. */
  declare readonly name: "AuthError";

  /** The stable reason, see {@link AuthErrorCode}. */
  readonly code: AuthErrorCode;

  /** For `ERR_INSUFFICIENT_SCOPE`: the scopes the method requires, space-delimited. */
  readonly scope: string | undefined;

  /**
   * Whether the call was refused because something the server depends on
   * failed (keys, revocation, the DPoP replay store), not because of the client's credentials.
   */
  get unavailable(): boolean {
    return (
      this.code === "ERR_KEYS_UNAVAILABLE" ||
      this.code === "ERR_REVOCATION_UNAVAILABLE" ||
      this.code === "ERR_DPOP_REPLAY_UNAVAILABLE"
    );
  }

  /** Whether a valid token was refused by the method's rule (authorization, not authentication). */
  get forbidden(): boolean {
    return challengeOf(this.code) === "insufficient_scope";
  }

  /** Whether the refusal concerns the request, the token, or nothing at all. */
  get challenge(): BearerChallenge {
    return challengeOf(this.code);
  }

  /**
   * AuthError's constructor. The message is derived from the code so that no
   * caller can put a token or claim into it by mistake.
   */
  constructor(code: AuthErrorCode, options?: { cause?: unknown; scope?: string }) {
    super(messageOf(code), options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.scope = options?.scope;
  }
}
Object.defineProperty(AuthError.prototype, "name", { value: "AuthError", enumerable: false });

const refusals = new Map<AuthErrorCode, AuthError>();

/**
 * refusal returns the AuthError of a refusal that carries no detail (no cause,
 * no scope): one frozen instance per code, made on first use. A refused token
 * is an answer, not an event with a history worth a stack trace, and a new
 * error per refused call, with the stack trace it captures, was half of what
 * a refusal cost: an expired token refused through the request gate took
 * 8.9 µs with a new AuthError and 4.3 µs without its stack (bench:micro), and
 * a flood of refusals is where that cost shows.
 */
export function refusal(code: AuthErrorCode): AuthError {
  let error = refusals.get(code);
  if (error === undefined) {
    error = new AuthError(code);
    // Its stack would name the call that first refused with this code, not the one at hand.
    Object.defineProperty(error, "stack", { value: `AuthError: ${error.message}` });
    refusals.set(code, Object.freeze(error));
  }
  return error;
}

/**
 * safeCause keeps what helps diagnose a refusal (the error's class, jose's code
 * and the name of the failed claim) and drops the rest: jose attaches the whole
 * payload to claim errors, and parser messages can quote the input.
 */
export function safeCause(err: unknown): Error {
  if (!(err instanceof Error)) {
    return new Error("non-error thrown");
  }
  const { code, claim, reason } = err as { code?: unknown; claim?: unknown; reason?: unknown };
  const cause = new Error([code, claim, reason].filter((s) => typeof s === "string").join(" "));
  cause.name = err.name;
  return cause;
}

/**
 * asAuthError returns `err` when it is an AuthError, and otherwise the
 * refusal `code` with the error's safe cause: what fails unexpectedly while a
 * token is judged refuses the token (fail closed).
 */
export function asAuthError(err: unknown, code: AuthErrorCode = "ERR_TOKEN_INVALID"): AuthError {
  return err instanceof AuthError ? err : new AuthError(code, { cause: safeCause(err) });
}

function messageOf(code: AuthErrorCode): string {
  switch (code) {
    case "ERR_TOKEN_MISSING":
      return "missing bearer token";
    case "ERR_AUTHORIZATION_MALFORMED":
      return "malformed authorization header";
    case "ERR_TOKEN_EXPIRED":
      return "token expired";
    case "ERR_KEYS_UNAVAILABLE":
    case "ERR_REVOCATION_UNAVAILABLE":
    case "ERR_DPOP_REPLAY_UNAVAILABLE":
      return "authentication unavailable";
    case "ERR_DPOP_BINDING_REQUIRED":
      return "DPoP-bound token required";
    case "ERR_DPOP_NONCE_REQUIRED":
      return "DPoP nonce required";
    case "ERR_INSUFFICIENT_SCOPE":
      return "insufficient scope";
    case "ERR_ACCESS_DENIED":
    case "ERR_RULE_FAILED":
      return "access denied";
    default:
      return code.startsWith("ERR_DPOP_") ? "invalid DPoP proof" : "invalid token";
  }
}

function challengeOf(code: AuthErrorCode): BearerChallenge {
  switch (code) {
    case "ERR_TOKEN_MISSING":
    case "ERR_KEYS_UNAVAILABLE":
    case "ERR_REVOCATION_UNAVAILABLE":
    case "ERR_DPOP_REPLAY_UNAVAILABLE":
      return "none";
    case "ERR_AUTHORIZATION_MALFORMED":
      return "invalid_request";
    case "ERR_INSUFFICIENT_SCOPE":
    case "ERR_ACCESS_DENIED":
    case "ERR_RULE_FAILED":
      return "insufficient_scope";
    case "ERR_DPOP_BINDING_REQUIRED":
    case "ERR_DPOP_KEY_MISMATCH":
      return "invalid_token";
    case "ERR_DPOP_NONCE_REQUIRED":
      return "use_dpop_nonce";
    default:
      return code.startsWith("ERR_DPOP_") ? "invalid_dpop_proof" : "invalid_token";
  }
}
