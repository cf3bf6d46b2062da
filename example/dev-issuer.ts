import { randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";

/** TokenRequest is what a caller may ask of the dev issuer; every field is optional. */
export interface TokenRequest {
  /** The `sub` claim, 1 to 256 characters. Default `"demo"`. */
  readonly sub?: string | undefined;
  /** The `scope` claim: space-separated scope tokens, at most 1024 characters. */
  readonly scope?: string | undefined;
  /** Lifetime in seconds, an integer from 1 to 86400. Default 300. */
  readonly ttl?: number | undefined;
}

/**
 * DevIssuer is a throwaway token issuer for the demo: one ES256 key pair that
 * lives as long as the process, so no token outlives a restart.
 */
export interface DevIssuer {
  /** The `iss` of every token, also the base of the discovery document. */
  readonly issuer: string;
  /** The `aud` of every token. */
  readonly audience: string;
  /** The public key as a JWK, with `kid`, `alg` and `use`. */
  readonly publicJwk: Readonly<JWK>;
  /**
   * mint signs a token; a bad request throws a {@link TokenRequestError}.
   * With `binding`, the token is bound to that DPoP key (`cnf.jkt`, RFC 9449).
   */
  mint(request?: TokenRequest, binding?: TokenBinding): Promise<string>;
}

/** TokenBinding binds a token to a DPoP key: the RFC 7638 thumbprint of its public JWK. */
export interface TokenBinding {
  readonly jkt: string;
}

/**
 * TokenRequestError is a refused token request. Its message is fixed text
 * that never repeats what the caller sent, so it is safe to answer with.
 */
export class TokenRequestError extends Error {
  override readonly name = "TokenRequestError";
}

const defaultSubject = "demo";
const defaultTtl = 300;
/** The longest lifetime of a token the dev issuer mints, in seconds. */
export const maxTtl = 86_400;
// RFC 6749 section 3.3: scope tokens are printable ASCII except `"` and `\`.
const scopePattern = /^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/;

/**
 * createDevIssuer makes a fresh key pair. The private key cannot be exported:
 * it only ever signs inside this process.
 *
 * @example
 * ```ts
 * const issuer = await createDevIssuer({ issuer: "http://127.0.0.1:8080", audience: "api" });
 * const token = await issuer.mint({ sub: "alice", scope: "notes:read" });
 * ```
 */
export async function createDevIssuer(options: {
  issuer: string;
  audience: string;
}): Promise<DevIssuer> {
  const { issuer, audience } = options;
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  // A fresh kid per process: a client that cached the old JWKS sees at once
  // that it needs the new one.
  const kid = `demo-${randomUUID()}`;
  const publicJwk = Object.freeze({
    ...(await exportJWK(publicKey)),
    kid,
    alg: "ES256",
    use: "sig",
  });
  return {
    issuer,
    audience,
    publicJwk,
    async mint(request = {}, binding) {
      const { sub, scope, ttl } = checkTokenRequest(request);
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({
        ...(scope === undefined ? {} : { scope }),
        ...(binding === undefined ? {} : { cnf: { jkt: binding.jkt } }),
      })
        .setProtectedHeader({ alg: "ES256", kid, typ: "JWT" })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(sub)
        .setIssuedAt(now)
        .setExpirationTime(now + ttl)
        .setJti(randomUUID())
        .sign(privateKey);
    },
  };
}

/**
 * checkTokenRequest validates a parsed request body (anything JSON can hold)
 * and fills in the defaults. Unknown fields are refused, so that a typo such
 * as `scopes` does not silently mint a token without scopes.
 */
export function checkTokenRequest(body: unknown): {
  sub: string;
  scope: string | undefined;
  ttl: number;
} {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new TokenRequestError("the body must be a JSON object");
  }
  const fields = body as Record<string, unknown>;
  if (Object.keys(fields).some((key) => !["sub", "scope", "ttl"].includes(key))) {
    throw new TokenRequestError("unknown field; the allowed fields are sub, scope and ttl");
  }
  const { sub = defaultSubject, scope, ttl = defaultTtl } = fields;
  if (typeof sub !== "string" || sub.length === 0 || sub.length > 256) {
    throw new TokenRequestError("sub must be a string of 1 to 256 characters");
  }
  if (scope !== undefined && (typeof scope !== "string" || scope.length > 1024)) {
    throw new TokenRequestError("scope must be a string of at most 1024 characters");
  }
  if (scope !== undefined && scope !== "" && !scopePattern.test(scope)) {
    throw new TokenRequestError("scope must be scope tokens separated by single spaces");
  }
  if (typeof ttl !== "number" || !Number.isInteger(ttl) || ttl < 1 || ttl > maxTtl) {
    throw new TokenRequestError(`ttl must be an integer from 1 to ${maxTtl} (seconds)`);
  }
  // An empty scope means "no scopes": leave the claim out rather than send "".
  return { sub, scope: scope === "" ? undefined : scope, ttl };
}
