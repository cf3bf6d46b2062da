/**
 * JwtClaims is the verified payload of a token as handlers see it: deeply
 * read-only, with a null prototype. Registered claims are typed; any other
 * claim is `unknown` until the handler checks its shape.
 */
export interface JwtClaims {
  /** Issuer: who signed the token. */
  readonly iss?: string;
  /** Subject: whom the token is about, usually the user or client. */
  readonly sub?: string;
  /** Audience: the services the token is meant for. */
  readonly aud?: string | readonly string[];
  /** Expiry, in seconds since the epoch. */
  readonly exp?: number;
  /** Not before, in seconds since the epoch. */
  readonly nbf?: number;
  /** Issued at, in seconds since the epoch. */
  readonly iat?: number;
  /** The token's unique id. */
  readonly jti?: string;
  /** Any other claim, to be checked for its shape before use. */
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
  // Copied with a spread, which keeps V8's fast properties, then cut loose
  // from Object.prototype. (Object.create(null), or adding keys one by one,
  // gives a dictionary: three to six times larger in the token cache and
  // slower to build.) A spread defines own data properties, so a `__proto__`
  // key stays an ordinary property, as does any other; symbol keys, which
  // JSON cannot hold, are left out as before.
  const copy = (
    Object.getOwnPropertySymbols(value).length === 0
      ? { ...value }
      : Object.fromEntries(Object.entries(value))
  ) as Record<string, unknown>;
  Object.setPrototypeOf(copy, null);
  for (const key of Object.keys(copy)) {
    const item = copy[key];
    if (typeof item === "object" && item !== null) {
      copy[key] = freezeValue(item);
    }
  }
  return Object.freeze(copy);
}

/**
 * freezeParsedClaims is {@link freezeClaims} for a payload the caller has just
 * parsed with `JSON.parse` and shares with no one: it is frozen where it is,
 * without a copy. (JSON gives only plain objects, arrays and primitives, each
 * key an own data property; a `__proto__` key among them is one too.)
 */
export function freezeParsedClaims(payload: object): JwtClaims {
  return freezeInPlace(payload) as JwtClaims;
}

function freezeInPlace(value: object): object {
  if (!Array.isArray(value)) {
    Object.setPrototypeOf(value, null);
  }
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    if (typeof item === "object" && item !== null) {
      freezeInPlace(item);
    }
  }
  return Object.freeze(value);
}
