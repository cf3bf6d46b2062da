// Fixtures for the core unit tests: keys and tokens minted per test with jose,
// hand-crafted compact tokens, a real X.509 certificate built from DER, and one
// assertion for refusals. Nothing here touches the network.
import * as assert from "node:assert/strict";
import { createHmac, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import type { TestContext } from "node:test";
import { inspect } from "node:util";
import {
  CompactSign,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWSHeaderParameters,
  SignJWT,
} from "jose";
import { issueCertificate } from "../../example/x509.js";
import { AuthError, type AuthErrorCode, type BearerChallenge } from "../../src/index.js";

/** The issuer and audience the verifier tests agree on. */
export const issuer = "https://issuer.core.test/";
export const audience = "core-tests";

/**
 * Claim values that must never show up in an error: every token minted by
 * {@link mint} carries them, and {@link assertRefused} looks for them.
 */
export const secretClaims = {
  sub: "secret-subject-123",
  email: "secret-email-456@example.test",
  tenant: "secret-tenant-789",
} as const;

/** An instant all frozen-clock tests share: 2030-01-01T00:00:00Z, in milliseconds. */
export const frozenNowMs = Date.UTC(2030, 0, 1);

/** The current time in whole seconds (mocked or not). */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** The asymmetric algorithms the end-to-end tests cover. */
export type AsymmetricAlg = "RS256" | "PS256" | "ES256" | "ES384" | "EdDSA";

/** A key pair made fresh for one test, with the public key in every accepted form. */
export interface TestKeyPair {
  readonly alg: AsymmetricAlg;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly publicPem: string;
  readonly publicJwk: JWK;
  readonly publicKeyObject: KeyObject;
}

/** keyPair generates an extractable key pair for `alg` and its public forms. */
export async function keyPair(alg: AsymmetricAlg): Promise<TestKeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicPem = await exportSPKI(publicKey);
  return {
    alg,
    privateKey,
    publicKey,
    publicPem,
    publicJwk: await exportJWK(publicKey),
    publicKeyObject: createPublicKey(publicPem),
  };
}

/** A 64-byte HMAC secret, long enough for HS256, HS384 and HS512. */
export const secret64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/**
 * mint signs a JWT. Claims default to the registered ones the verifier tests
 * expect (iss, aud, exp in five minutes, iat now) plus {@link secretClaims};
 * a claim set to `undefined` is left out.
 */
export async function mint(
  key: CryptoKey | KeyObject | Uint8Array,
  header: JWSHeaderParameters & { alg: string },
  claims: Record<string, unknown> = {},
): Promise<string> {
  const now = nowSeconds();
  const payload = {
    iss: issuer,
    aud: audience,
    iat: now,
    exp: now + 300,
    ...secretClaims,
    ...claims,
  };
  return new SignJWT(payload).setProtectedHeader(header).sign(key);
}

/** signRaw signs an arbitrary payload text, for payloads `SignJWT` would not produce. */
export async function signRaw(
  key: CryptoKey | KeyObject | Uint8Array,
  header: JWSHeaderParameters & { alg: string },
  payload: string,
): Promise<string> {
  return new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader(header).sign(key);
}

/** b64url encodes text as unpadded base64url. */
export function b64url(text: string): string {
  return Buffer.from(text, "utf8").toString("base64url");
}

/** craft assembles a compact JWS from a header, a payload and a signature segment, unsigned. */
export function craft(header: object, payload: object, signature: string): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.${signature}`;
}

/**
 * hmacSign makes an HS256 token by hand from header and payload texts, for
 * inputs jose refuses to sign (an unknown `crit`, a header that is not JSON).
 */
export function hmacSign(secret: string, header: string, payload: string): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

/** A string of `length` characters with the syntax of a compact JWS. */
export function jwsOfLength(length: number): string {
  assert.ok(length >= 14);
  // Canonical base64url: no segment may have a length of 1 modulo 4.
  const payload = (length - 10) % 4 === 1 ? "AAAAAA" : "AAAA";
  return `AAAA.${payload}.${"A".repeat(length - 6 - payload.length)}`;
}

/**
 * tamperSignature changes one character in the middle of the signature, where
 * every bit of the character is significant (unlike the last one).
 */
export function tamperSignature(token: string): string {
  const dot = token.lastIndexOf(".");
  const i = dot + Math.floor((token.length - dot) / 2);
  const replacement = token[i] === "A" ? "B" : "A";
  return `${token.slice(0, i)}${replacement}${token.slice(i + 1)}`;
}

/** The message every code maps to. */
export function messageFor(code: AuthErrorCode): string {
  switch (code) {
    case "ERR_TOKEN_MISSING":
      return "missing bearer token";
    case "ERR_AUTHORIZATION_MALFORMED":
      return "malformed authorization header";
    case "ERR_TOKEN_EXPIRED":
      return "token expired";
    case "ERR_KEYS_UNAVAILABLE":
    case "ERR_REVOCATION_UNAVAILABLE":
      return "authentication unavailable";
    default:
      return "invalid token";
  }
}

/** The RFC 6750 challenge every code maps to. */
export function challengeFor(code: AuthErrorCode): BearerChallenge {
  switch (code) {
    case "ERR_TOKEN_MISSING":
    case "ERR_KEYS_UNAVAILABLE":
    case "ERR_REVOCATION_UNAVAILABLE":
      return "none";
    case "ERR_AUTHORIZATION_MALFORMED":
      return "invalid_request";
    default:
      return "invalid_token";
  }
}

/**
 * assertNoLeak checks that none of `secrets` appears in anything a log line or
 * a client could see of the error: its message, its cause, its JSON form and
 * its full inspection (stack and cause included).
 */
export function assertNoLeak(err: AuthError, secrets: readonly string[]): void {
  const views = {
    message: err.message,
    cause: String(err.cause),
    json: JSON.stringify(err),
    inspect: inspect(err, { depth: Number.POSITIVE_INFINITY }),
  };
  for (const secret of secrets) {
    assert.ok(
      secret.length >= 8,
      `leak marker ${JSON.stringify(secret)} is too short to mean much`,
    );
    for (const [view, text] of Object.entries(views)) {
      assert.ok(!text.includes(secret), `the error's ${view} leaks ${JSON.stringify(secret)}`);
    }
  }
}

/**
 * assertRefused awaits a verification that must fail, and checks the error:
 * an AuthError with `code`, the fixed message and challenge of that code, and
 * no trace of the token or of any claim value.
 */
export async function assertRefused(
  promise: Promise<unknown>,
  code: AuthErrorCode,
  token?: string,
): Promise<AuthError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof AuthError, `expected an AuthError, got ${inspect(caught)}`);
  assert.deepEqual(
    { code: caught.code, message: caught.message, challenge: caught.challenge },
    { code, message: messageFor(code), challenge: challengeFor(code) },
  );
  const secrets: string[] = Object.values(secretClaims);
  if (token !== undefined) {
    // The whole token, and each of its segments on its own.
    secrets.push(token, ...token.split(".").filter((s) => s.length >= 8));
  }
  assertNoLeak(caught, secrets);
  return caught;
}

/**
 * countTokenParses counts the verifier's decodes of a token's header (the
 * JSON.parse calls on text with an "alg") or of its payload (the others) from
 * now until the test ends.
 */
export function countTokenParses(t: TestContext, part: "header" | "payload"): () => number {
  const spy = t.mock.method(JSON, "parse");
  const wanted = part === "header";
  return () =>
    spy.mock.calls.filter((call) => String(call.arguments[0]).includes('"alg"') === wanted).length;
}

// --- a real X.509 certificate, DER-encoded by hand (Node has no API to issue one)

/**
 * certificateFor issues a real X.509 v3 certificate for `subject`, signed with
 * ECDSA P-256 by a throwaway CA whose public key is returned for checking it.
 */
export function certificateFor(subject: KeyObject): { pem: string; caPublicKey: KeyObject } {
  const ca = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const pem = issueCertificate({
    subjectKey: subject,
    subjectName: "connect-jwt test signer",
    issuerKey: ca.privateKey,
    issuerName: "connect-jwt test CA",
    notBefore: new Date("2025-01-01T00:00:00Z"),
    notAfter: new Date("2049-12-31T23:59:59Z"),
    serialNumber: Uint8Array.of(0x01, 0x23, 0x45),
  });
  return { pem, caPublicKey: ca.publicKey };
}
