// The fixtures every test shares: the issuer and audience, keys made fresh per
// test, tokens minted with jose or crafted by hand, a frozen clock, a real
// X.509 certificate, and the assertion for refusals. Nothing here touches the
// network or imports the demo.
import * as assert from "node:assert/strict";
import {
  createHmac,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
} from "node:crypto";
import { type MockTimers, mock, type TestContext } from "node:test";
import { inspect } from "node:util";
import {
  CompactSign,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWSHeaderParameters,
  type JWTPayload,
  SignJWT,
} from "jose";
import { AuthError, type AuthErrorCode, type BearerChallenge } from "../../src/index.js";

// --- issuer, audience, claims

/** The issuer and audience every fixture token and test server agree on. */
export const issuer = "https://issuer.test/";
export const audience = "connect-jwt-tests";

/** The scopes fixture tokens carry: enough for every method of DemoService's proto rules. */
export const allScopes = "notes:read notes:write chat";

/**
 * Claim values that must never show up in an error: every token minted by
 * {@link mint} carries them, and {@link assertRefused} looks for them.
 */
export const secretClaims = {
  sub: "secret-subject-123",
  email: "secret-email-456@example.test",
  tenant: "secret-tenant-789",
} as const;

/** The current time in whole seconds (mocked or not). */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * validClaims are the claims of a token every test server accepts: issuer,
 * audience, {@link allScopes}, issued now, expiring in five minutes, and
 * {@link secretClaims}. {@link mint} starts from them; hand-crafted tokens too.
 */
export function validClaims(): Record<string, unknown> {
  const now = nowSeconds();
  return {
    iss: issuer,
    aud: audience,
    scope: allScopes,
    iat: now,
    exp: now + 300,
    ...secretClaims,
  };
}

// --- a frozen clock

/** An instant all frozen-clock tests share: 2030-01-01T00:00:00Z, in milliseconds. */
export const frozenNowMs = Date.UTC(2030, 0, 1);

/**
 * freezeClock stops `Date` at {@link frozenNowMs} (with the test's own
 * `t.mock.timers`, or the file's `mock.timers`) and returns a function that
 * sets the clock to that instant plus `seconds`.
 */
export function freezeClock(timers: MockTimers = mock.timers): (seconds: number) => void {
  timers.enable({ apis: ["Date"], now: frozenNowMs });
  return (seconds) => timers.setTime(frozenNowMs + seconds * 1000);
}

// --- keys

/** The asymmetric algorithms the tests cover. */
export type AsymmetricAlg = "RS256" | "PS256" | "ES256" | "ES384" | "EdDSA";

/** A key pair made fresh for one test, with the public key in every accepted form. */
export interface TestKeyPair {
  readonly alg: AsymmetricAlg;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly publicPem: string;
  /** The bare public JWK: no `kid`, `alg` or `use`. */
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

/** A key pair with a key id, as a JWKS publishes it: tokens signed with it name the kid. */
export interface TestKey extends TestKeyPair {
  readonly kid: string;
  /** The public JWK with `kid`, `alg` and `use: "sig"`. */
  readonly publicJwk: JWK;
}

/** generateTestKey makes a {@link keyPair} with the key id `kid`. */
export async function generateTestKey(alg: AsymmetricAlg, kid = `${alg}-1`): Promise<TestKey> {
  const pair = await keyPair(alg);
  return { ...pair, kid, publicJwk: { ...pair.publicJwk, kid, alg, use: "sig" } };
}

/** A 64-byte HMAC secret, long enough for HS256, HS384 and HS512. */
export const secret64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// --- tokens

/** What {@link mint} signs with: a private key (with its kid, if any) or an HMAC secret. */
export type SigningKey =
  | { readonly alg: string; readonly kid?: string; readonly privateKey: CryptoKey | KeyObject }
  | { readonly alg: string; readonly secret: Uint8Array };

/** Options for {@link mint}; everything has a sensible default. */
export interface MintOptions {
  /** Claims merged over {@link validClaims}; one set to `undefined` is left out. */
  claims?: JWTPayload | Record<string, unknown>;
  /** Claims to drop from the result, e.g. ["exp"]. */
  omit?: readonly string[];
  /** Header members merged over `{ alg, kid, typ: "JWT" }`. */
  header?: Record<string, unknown>;
}

/** mint signs a token with `signer`: {@link validClaims} unless `options` say otherwise. */
export async function mint(signer: SigningKey, options: MintOptions = {}): Promise<string> {
  const payload: Record<string, unknown> = { ...validClaims(), ...options.claims };
  for (const name of options.omit ?? []) {
    delete payload[name];
  }
  const header = {
    alg: signer.alg,
    typ: "JWT",
    ...("kid" in signer && signer.kid !== undefined ? { kid: signer.kid } : {}),
    ...options.header,
  };
  return new SignJWT(payload)
    .setProtectedHeader(header as { alg: string })
    .sign("secret" in signer ? signer.secret : signer.privateKey);
}

/** signRaw signs an arbitrary payload text, for payloads `SignJWT` would not produce. */
export async function signRaw(
  key: CryptoKey | KeyObject | Uint8Array,
  header: JWSHeaderParameters & { alg: string },
  payload: string,
): Promise<string> {
  return new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader(header).sign(key);
}

/** b64url encodes a string, or any other value as JSON, as unpadded base64url. */
export function b64url(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return Buffer.from(text, "utf8").toString("base64url");
}

/** compactJws assembles a compact JWS from a header, a payload and a signature segment, unsigned. */
export function compactJws(header: object, payload: object, signature: string): string {
  return `${b64url(header)}.${b64url(payload)}.${signature}`;
}

/** unsigned crafts a token with `alg: none` (or `alg`) and a dummy signature segment. */
export function unsigned(payload: Record<string, unknown>, alg = "none"): string {
  return compactJws({ alg, typ: "JWT" }, payload, b64url("sig"));
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

// --- refusals

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

/** der encodes one DER element: tag, definite length, content. */
function der(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  const length: number[] = [];
  for (let n = body.length; n > 0; n >>= 8) {
    length.unshift(n & 0xff);
  }
  const head = body.length < 0x80 ? [body.length] : [0x80 | length.length, ...length];
  return Buffer.concat([Uint8Array.of(tag, ...head), body]);
}

// Fixed parts: the AlgorithmIdentifier of ecdsa-with-SHA256 (1.2.840.10045.4.3.2)
// and the attribute type of a common name (2.5.4.3).
const ecdsaWithSha256 = Buffer.from("300a06082a8648ce3d040302", "hex");
const commonNameType = Buffer.from("0603550403", "hex");

function commonName(name: string): Buffer {
  return der(0x30, der(0x31, der(0x30, commonNameType, der(0x0c, Buffer.from(name, "utf8")))));
}

/**
 * certificateFor issues a real X.509 v3 certificate for `subject`, valid from
 * 2025 to 2049, signed with ECDSA P-256 by a throwaway CA whose public key is
 * returned for checking it.
 */
export function certificateFor(subject: KeyObject): { pem: string; caPublicKey: KeyObject } {
  const ca = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const tbs = der(
    0x30,
    der(0xa0, der(0x02, Uint8Array.of(2))), // version v3
    der(0x02, Uint8Array.of(0x01, 0x23, 0x45)), // serial number
    ecdsaWithSha256,
    commonName("connect-jwt test CA"),
    der(0x30, der(0x17, Buffer.from("250101000000Z")), der(0x17, Buffer.from("491231235959Z"))),
    commonName("connect-jwt test signer"),
    subject.export({ type: "spki", format: "der" }),
  );
  const signature = sign("sha256", tbs, ca.privateKey);
  const certificate = der(0x30, tbs, ecdsaWithSha256, der(0x03, Uint8Array.of(0), signature));
  const lines = certificate.toString("base64").match(/.{1,64}/g) ?? [];
  const pem = `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
  return { pem, caPublicKey: ca.publicKey };
}
