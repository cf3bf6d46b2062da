import {
  type CryptoKey,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from "jose";

/** The scopes fixture tokens carry: enough for every method of DemoService's proto rules. */
export const allScopes = "notes:read notes:write chat";

/** The issuer and audience every fixture token and test server agree on. */
export const issuer = "https://issuer.test/";
export const audience = "connect-jwt-tests";

/** A signing key pair with its public forms, made fresh per test file. */
export interface TestKey {
  readonly alg: string;
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly publicPem: string;
}

/** generateTestKey makes an extractable key pair for `alg` and its public JWK and PEM. */
export async function generateTestKey(alg: "ES256" | "RS256" | "EdDSA", kid = `${alg}-1`) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { alg, kid, privateKey, publicKey, publicJwk, publicPem: await exportSPKI(publicKey) };
}

/** Options for {@link mint}; everything has a sensible default. */
export interface MintOptions {
  /** Claims merged over the defaults (iss, aud, sub, iat, exp in 5 minutes, scope {@link allScopes}). */
  claims?: JWTPayload & Record<string, unknown>;
  /** Claims to drop from the defaults, e.g. ["exp"]. */
  omit?: readonly string[];
  /** Header members merged over `{ alg, kid, typ: "JWT" }`. */
  header?: Record<string, unknown>;
}

const now = () => Math.floor(Date.now() / 1000);

/** mint signs a token with `key` (a TestKey, or HMAC secret bytes with `alg`). */
export async function mint(
  key: TestKey | { alg: string; secret: Uint8Array },
  options: MintOptions = {},
): Promise<string> {
  const payload: Record<string, unknown> = {
    iss: issuer,
    aud: audience,
    sub: "user-1",
    scope: allScopes,
    iat: now(),
    exp: now() + 300,
    ...options.claims,
  };
  for (const name of options.omit ?? []) {
    delete payload[name];
  }
  const header = {
    alg: key.alg,
    typ: "JWT",
    ...("kid" in key ? { kid: key.kid } : {}),
    ...options.header,
  };
  return new SignJWT(payload)
    .setProtectedHeader(header as { alg: string })
    .sign("secret" in key ? key.secret : key.privateKey);
}

/** b64url encodes a JSON value or a string as base64url without padding. */
export function b64url(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return Buffer.from(text).toString("base64url");
}

/** unsigned crafts a token with `alg: none` and a dummy signature segment. */
export function unsigned(payload: Record<string, unknown>, alg = "none"): string {
  return `${b64url({ alg, typ: "JWT" })}.${b64url(payload)}.${b64url("sig")}`;
}

/** validClaims are the default claims of {@link mint}, for hand-crafted tokens. */
export function validClaims(): Record<string, unknown> {
  return {
    iss: issuer,
    aud: audience,
    sub: "user-1",
    scope: allScopes,
    iat: now(),
    exp: now() + 300,
  };
}
