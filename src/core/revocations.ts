import type { JwtClaims } from "./claims.js";

/**
 * Revocations is a revocation list the verifier asks on every call, cache
 * hits included, after the token verified: a local lookup, synchronous, so
 * that it costs a call no round trip. `redisRevocations()` from
 * `connect-jwt/redis` is one, kept current across replicas.
 *
 * `isRevoked` returns whether the token is revoked, and throws when the list
 * cannot be trusted (not loaded yet, or out of touch with its source for
 * longer than it allows): the call is then refused as unavailable
 * (`ERR_REVOCATION_UNAVAILABLE`, `Code.Unavailable`), as when the
 * `isRevoked` option throws.
 *
 * @example
 * ```ts
 * const denied = new Set<string>();
 * const revocations: Revocations = { isRevoked: (claims) => denied.has(String(claims.jti)) };
 * const auth = createJwtAuth({ secret, issuer, audience, revocations });
 * ```
 */
export interface Revocations {
  /** Whether the verified token is revoked; throws when the list cannot be trusted. */
  isRevoked(claims: JwtClaims): boolean;
}

/** Checks the `revocations` option: an object with an `isRevoked` method, or undefined. */
export function checkRevocations(revocations: unknown): Revocations | undefined {
  if (revocations === undefined) {
    return undefined;
  }
  if (
    typeof revocations !== "object" ||
    revocations === null ||
    typeof (revocations as Partial<Revocations>).isRevoked !== "function"
  ) {
    throw new TypeError(
      "revocations must be an object with isRevoked(claims), e.g. redisRevocations({ client })",
    );
  }
  return revocations as Revocations;
}
