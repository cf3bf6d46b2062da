/**
 * JwtClaims is the verified payload of a token as handlers see it: deeply
 * read-only, with a null prototype. Registered claims are typed; any other
 * claim is `unknown` until the handler checks its shape.
 */
export interface JwtClaims {
  readonly iss?: string;
  readonly sub?: string;
  readonly aud?: string | readonly string[];
  readonly exp?: number;
  readonly nbf?: number;
  readonly iat?: number;
  readonly jti?: string;
  readonly [claim: string]: unknown;
}

/**
 * freezeClaims copies a verified payload into a deeply frozen object whose
 * plain objects have a null prototype, so that no handler can change what
 * another handler (or the cache) sees, and no `__proto__` key can reach an
 * object prototype.
 */
export function freezeClaims(payload: object): JwtClaims {
  return freezeValue(payload) as JwtClaims;
}

function freezeValue(value: unknown): unknown {
  if (typeof value !== "object" || value === null) {
    return value;
  }
  if (Array.isArray(value)) {
    return Object.freeze(value.map(freezeValue));
  }
  const copy = Object.create(null) as Record<string, unknown>;
  for (const [key, item] of Object.entries(value)) {
    Object.defineProperty(copy, key, { value: freezeValue(item), enumerable: true });
  }
  return Object.freeze(copy);
}
