import { randomBytes } from "node:crypto";
import type { AuthErrorCode, JwtAuthOptions, JwtClaims } from "../../../src/index.js";
import { allScopes, audience, generateTestKey, issuer } from "../../helpers/fixtures.js";
import type { TransportKind } from "../../helpers/server.js";
import { craft, enc, type JsonText, nonCanonical, parts, relabel, sized } from "./craft.js";

// The named attacks on the `authorization` header, the token and its claims.
// Each case says what to send and what the server must answer; the battery
// (battery.test.ts) runs every one on every transport.

/** The server's keys, and an attacker's with the same `kid`s. */
export const keys = {
  es256: await generateTestKey("ES256"),
  rs256: await generateTestKey("RS256"),
  attackerEc: await generateTestKey("ES256", "ES256-1"),
  attackerRsa: await generateTestKey("RS256", "RS256-1"),
};

/** Claim values no refusal may show: every crafted token carries them. */
export const subject = `subject-${randomBytes(6).toString("hex")}`;
export const tenant = `tenant-${randomBytes(6).toString("hex")}`;

/** The method rule `__proto__` tries to satisfy: Ping needs scope `admin` on the server under attack. */
export const adminMethod = "demo.v1.DemoService/Ping";

/** The server under attack: realistic options, as a deployment would set them. */
export function serverOptions(extra: Partial<JwtAuthOptions> = {}): JwtAuthOptions {
  return {
    jwks: { keys: [keys.es256.publicJwk, keys.rs256.publicJwk] },
    issuer,
    audience,
    typ: "JWT",
    maxLifetime: "1h",
    requiredClaims: ["sub"],
    rules: { [adminMethod]: { scopes: ["admin"] } },
    ...extra,
  };
}

/** What the server must do with a case. */
export type Expected =
  /** Refused by connect-jwt, with this reason (the code, message and challenge follow from it). */
  | { readonly reason: AuthErrorCode }
  /** Refused by Node's HTTP parser before any RPC code runs: this status, no RPC answer. */
  | { readonly httpStatus: number }
  /** Let through: the handler runs once and sees the claims. */
  | { readonly accepted: true; readonly check?: (claims: JwtClaims) => void };

/** Where the case calls: the battery's methods, or Ping, which needs scope `admin`. */
export type Target = "any-valid-token" | "admin";

/** Helpers a case gets when it builds its header values. */
export interface CaseContext {
  /** An HTTP server on 127.0.0.1 that counts requests: a key fetched from a token header would show. */
  readonly spyUrl: string;
}

/** One named attack. */
export interface AttackCase {
  readonly name: string;
  readonly group: "header" | "token" | "claims";
  /**
   * The `authorization` field values, in order: none for `[]`, one, or several
   * separate fields (sent with the raw client). Strings are sent as latin1 bytes.
   */
  readonly authorization: (ctx: CaseContext) => Promise<readonly string[]> | readonly string[];
  /** Send with the raw client (bytes Node's HTTP client refuses, duplicated fields). */
  readonly raw?: boolean;
  readonly target?: Target;
  readonly expect: Expected | ((transport: TransportKind) => Expected);
}

const now = () => Math.floor(Date.now() / 1000);

/** The claims of a good token, with `extra` merged over them and `omit` left out. */
export function claims(
  extra: Record<string, unknown> = {},
  omit: readonly string[] = [],
): Record<string, unknown> {
  const all: Record<string, unknown> = {
    iss: issuer,
    aud: audience,
    sub: subject,
    tenant,
    scope: allScopes,
    iat: now(),
    exp: now() + 300,
    ...extra,
  };
  for (const name of omit) delete all[name];
  return all;
}

const es = { alg: "ES256", kid: keys.es256.kid, typ: "JWT" };
const rs = { alg: "RS256", kid: keys.rs256.kid, typ: "JWT" };

/** A good ES256 token, with its header and payload changed as asked. */
export function token(header: JsonText = es, payload: JsonText = claims()): string {
  return craft(keys.es256, header, payload);
}

const bearer = (value: string) => [`Bearer ${value}`];
const refused = (reason: AuthErrorCode): Expected => ({ reason });
const accepted: Expected = { accepted: true };
// Node's HTTP/1.1 parser answers 400 to a control character in a header value;
// node:http2 drops such a field, so the call arrives without a token.
const controlCharacter = (t: TransportKind): Expected =>
  t.httpVersion === "1.1" ? { httpStatus: 400 } : refused("ERR_TOKEN_MISSING");
const randomSegment = (bytes: number) => randomBytes(bytes).toString("base64url");
const utf8AsLatin1 = (s: string) => Buffer.from(s, "utf8").toString("latin1");
const sizeCap = 8192;

function withSignature(t: string, signature: string): string {
  const [h, p] = parts(t);
  return `${h}.${p}.${signature}`;
}

function hmacWith(secret: string, header: Record<string, unknown>): string {
  return craft({ secret }, { ...header, alg: "HS256" }, claims());
}

const headerCases: AttackCase[] = [
  {
    name: "no authorization header",
    group: "header",
    authorization: () => [],
    expect: refused("ERR_TOKEN_MISSING"),
  },
  {
    name: "empty authorization header",
    group: "header",
    authorization: () => [""],
    expect: refused("ERR_TOKEN_MISSING"),
  },
  {
    name: "`Bearer` alone",
    group: "header",
    authorization: () => ["Bearer"],
    expect: refused("ERR_AUTHORIZATION_MALFORMED"),
  },
  {
    // HTTP/1.1 trims the trailing spaces (leaving `Bearer`); node:http2 drops a
    // field that ends in whitespace, so the call arrives without a token.
    name: "`Bearer` and trailing spaces only",
    group: "header",
    raw: true,
    authorization: () => ["Bearer     "],
    expect: (t) =>
      t.httpVersion === "1.1"
        ? refused("ERR_AUTHORIZATION_MALFORMED")
        : refused("ERR_TOKEN_MISSING"),
  },
  {
    name: "lower-case scheme (accepted)",
    group: "header",
    authorization: () => [`bearer ${token()}`],
    expect: accepted,
  },
  {
    name: "upper-case scheme (accepted)",
    group: "header",
    authorization: () => [`BEARER ${token()}`],
    expect: accepted,
  },
  {
    name: "several spaces after the scheme (accepted)",
    group: "header",
    authorization: () => [`Bearer     ${token()}`],
    expect: accepted,
  },
  {
    name: "tab after the scheme",
    group: "header",
    authorization: () => [`Bearer\t${token()}`],
    expect: refused("ERR_AUTHORIZATION_MALFORMED"),
  },
  {
    name: "Basic credentials",
    group: "header",
    authorization: () => ["Basic YWxpY2U6c2VjcmV0LXBhc3N3b3Jk"],
    expect: refused("ERR_TOKEN_MISSING"),
  },
  {
    name: "`Bearerxyz` scheme",
    group: "header",
    authorization: () => [`Bearerxyz ${token()}`],
    expect: refused("ERR_TOKEN_MISSING"),
  },
  {
    name: "token glued to the scheme",
    group: "header",
    authorization: () => [`Bearer${token()}`],
    expect: refused("ERR_TOKEN_MISSING"),
  },
  {
    name: "comma-joined values",
    group: "header",
    authorization: () => [`Bearer ${token()}, Bearer ${token()}`],
    expect: refused("ERR_AUTHORIZATION_MALFORMED"),
  },
  {
    name: "trailing comma",
    group: "header",
    authorization: () => [`Bearer ${token()},`],
    expect: refused("ERR_AUTHORIZATION_MALFORMED"),
  },
  {
    name: "duplicated header: valid token, then garbage",
    group: "header",
    raw: true,
    authorization: () => [`Bearer ${token()}`, "Bearer not-a-token"],
    expect: refused("ERR_AUTHORIZATION_MALFORMED"),
  },
  {
    name: "duplicated header: garbage, then valid token",
    group: "header",
    raw: true,
    authorization: () => ["Bearer not-a-token", `Bearer ${token()}`],
    expect: refused("ERR_AUTHORIZATION_MALFORMED"),
  },
  {
    name: "characters outside base64url (+ and /)",
    group: "header",
    authorization: () =>
      bearer(`${parts(token())[0]}.${randomSegment(30)}+/${randomSegment(9)}.${parts(token())[2]}`),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "punctuation in a segment (~ ! * $)",
    group: "header",
    authorization: () => bearer(token().replace(".", "~!*$.")),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "base64 padding `==`",
    group: "header",
    authorization: () => bearer(token().replace(/\.([^.]+)\./, ".$1==.")),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "space inside the token",
    group: "header",
    authorization: () => bearer(token().replace(".", ". ")),
    expect: refused("ERR_AUTHORIZATION_MALFORMED"),
  },
  {
    name: "tab inside the token",
    group: "header",
    authorization: () => bearer(token().replace(".", ".\t")),
    expect: refused("ERR_AUTHORIZATION_MALFORMED"),
  },
  {
    name: "non-ASCII UTF-8 bytes in the token (é)",
    group: "header",
    raw: true,
    authorization: () => bearer(utf8AsLatin1(`é${token()}`)),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "emoji in the token",
    group: "header",
    raw: true,
    authorization: () => bearer(`${token()}${utf8AsLatin1("🔑")}`),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "NUL byte in the token",
    group: "header",
    raw: true,
    authorization: () => bearer(`\0${token()}`),
    expect: controlCharacter,
  },
  {
    name: "control character 0x01 in the token",
    group: "header",
    raw: true,
    authorization: () => bearer(`${token()}\x01`),
    expect: controlCharacter,
  },
  {
    name: "DEL (0x7f) in the token",
    group: "header",
    raw: true,
    authorization: () => bearer(token().replace(".", ".\x7f")),
    expect: controlCharacter,
  },
  {
    name: "form feed after the scheme",
    group: "header",
    raw: true,
    authorization: () => [`Bearer\f${token()}`],
    expect: controlCharacter,
  },
  {
    name: "valid token sent byte for byte by the raw client (accepted: the raw client works)",
    group: "header",
    raw: true,
    authorization: () => bearer(token()),
    expect: accepted,
  },
  {
    name: "token of 12 KiB (over the cap, under Node's 16 KiB header limit)",
    group: "header",
    authorization: () => bearer(token(es, claims({ pad: "x".repeat(9000) }))),
    expect: refused("ERR_TOKEN_TOO_LARGE"),
  },
  {
    name: "token one character over the size cap (8193)",
    group: "header",
    authorization: () =>
      bearer(sized(sizeCap + 1, (pad, shift) => token({ ...es, x: shift }, claims({ pad })))),
    expect: refused("ERR_TOKEN_TOO_LARGE"),
  },
  {
    name: "token exactly at the size cap, bad signature (size-valid, otherwise invalid)",
    group: "header",
    authorization: () => {
      const t = sized(sizeCap, (pad, shift) => token({ ...es, x: shift }, claims({ pad })));
      return bearer(withSignature(t, randomSegment(64)));
    },
    expect: refused("ERR_SIGNATURE_INVALID"),
  },
  {
    name: "token exactly at the size cap, valid (accepted)",
    group: "header",
    authorization: () =>
      bearer(sized(sizeCap, (pad, shift) => token({ ...es, x: shift }, claims({ pad })))),
    expect: accepted,
  },
  {
    name: "a short token after 9000 spaces",
    group: "header",
    authorization: () => [`Bearer ${" ".repeat(9000)}${token()}`],
    expect: refused("ERR_TOKEN_TOO_LARGE"),
  },
];

const tokenCases: AttackCase[] = [
  {
    name: "two segments",
    group: "token",
    authorization: () => bearer(parts(token()).slice(0, 2).join(".")),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "four segments",
    group: "token",
    authorization: () => bearer(`${token()}.${randomSegment(8)}`),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "empty signature",
    group: "token",
    authorization: () => bearer(withSignature(token(), "")),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    // 72 of 86 characters: a whole number of base64 quanta, so the segment
    // stays canonical and the signature check itself refuses it.
    name: "truncated signature (48 of 64 bytes)",
    group: "token",
    authorization: () => bearer(token().slice(0, -14)),
    expect: refused("ERR_SIGNATURE_INVALID"),
  },
  {
    name: "signature with non-canonical base64url (same bytes, another string)",
    group: "token",
    authorization: () => {
      const [h, p, s] = parts(token());
      return bearer(`${h}.${p}.${nonCanonical(s)}`);
    },
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "header not JSON",
    group: "token",
    authorization: () => bearer(token("{alg:ES256")),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "header a JSON array",
    group: "token",
    authorization: () => bearer(token("[]", claims())),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "header a JSON string",
    group: "token",
    authorization: () => bearer(token('"ES256"', claims())),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "header a JSON number",
    group: "token",
    authorization: () => bearer(token("1", claims())),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "payload not JSON",
    group: "token",
    authorization: () => bearer(token(es, "not json at all")),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "payload a JSON array",
    group: "token",
    authorization: () => bearer(token(es, "[]")),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "payload a JSON string",
    group: "token",
    authorization: () => bearer(token(es, '"claims"')),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "payload a JSON number",
    group: "token",
    authorization: () => bearer(token(es, "1")),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "payload JSON null",
    group: "token",
    authorization: () => bearer(token(es, "null")),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  ...["none", "None", "NONE", "nOnE"].map(
    (alg): AttackCase => ({
      name: `alg "${alg}"`,
      group: "token",
      authorization: () => bearer(relabel(token(), { ...es, alg })),
      expect: refused("ERR_ALGORITHM_NOT_ALLOWED"),
    }),
  ),
  {
    name: 'alg "none" with an empty signature (the classic form)',
    group: "token",
    authorization: () => bearer(`${enc({ alg: "none", typ: "JWT" })}.${enc(claims())}.`),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "alg missing",
    group: "token",
    authorization: () => bearer(relabel(token(), { kid: es.kid, typ: "JWT" })),
    expect: refused("ERR_ALGORITHM_NOT_ALLOWED"),
  },
  {
    name: "alg an array",
    group: "token",
    authorization: () => bearer(relabel(token(), { ...es, alg: ["ES256"] })),
    expect: refused("ERR_ALGORITHM_NOT_ALLOWED"),
  },
  {
    name: "alg with a trailing space",
    group: "token",
    authorization: () => bearer(relabel(token(), { ...es, alg: "ES256 " })),
    expect: refused("ERR_ALGORITHM_NOT_ALLOWED"),
  },
  {
    name: "alg member duplicated, `none` last",
    group: "token",
    authorization: () =>
      bearer(relabel(token(), `{"alg":"ES256","kid":"${es.kid}","typ":"JWT","alg":"none"}`)),
    expect: refused("ERR_ALGORITHM_NOT_ALLOWED"),
  },
  {
    name: "HS256 signed with the RSA public key (PEM)",
    group: "token",
    authorization: () => bearer(hmacWith(keys.rs256.publicPem, rs)),
    expect: refused("ERR_ALGORITHM_NOT_ALLOWED"),
  },
  {
    name: "HS256 signed with the EC public key (PEM)",
    group: "token",
    authorization: () => bearer(hmacWith(keys.es256.publicPem, es)),
    expect: refused("ERR_ALGORITHM_NOT_ALLOWED"),
  },
  {
    name: "HS256 signed with the RSA public key (JWK JSON)",
    group: "token",
    authorization: () => bearer(hmacWith(JSON.stringify(keys.rs256.publicJwk), rs)),
    expect: refused("ERR_ALGORITHM_NOT_ALLOWED"),
  },
  {
    name: "HS256 signed with the EC public key (JWK JSON)",
    group: "token",
    authorization: () => bearer(hmacWith(JSON.stringify(keys.es256.publicJwk), es)),
    expect: refused("ERR_ALGORITHM_NOT_ALLOWED"),
  },
  {
    name: "RS256 token relabelled PS256",
    group: "token",
    authorization: () => bearer(relabel(craft(keys.rs256, rs, claims()), { ...rs, alg: "PS256" })),
    expect: refused("ERR_ALGORITHM_NOT_ALLOWED"),
  },
  {
    name: "ES256 token relabelled RS256 (the other allowed alg)",
    group: "token",
    authorization: () => bearer(relabel(token(), { ...es, alg: "RS256" })),
    expect: refused("ERR_KEY_NOT_FOUND"),
  },
  {
    name: "unknown kid",
    group: "token",
    authorization: () => bearer(token({ ...es, kid: "no-such-key" })),
    expect: refused("ERR_KEY_NOT_FOUND"),
  },
  {
    name: "kid with a path (../../etc/passwd)",
    group: "token",
    authorization: () => bearer(token({ ...es, kid: "../../etc/passwd" })),
    expect: refused("ERR_KEY_NOT_FOUND"),
  },
  {
    name: "kid with SQL",
    group: "token",
    authorization: () => bearer(token({ ...es, kid: "' OR '1'='1'; DROP TABLE keys; --" })),
    expect: refused("ERR_KEY_NOT_FOUND"),
  },
  {
    name: "kid an object",
    group: "token",
    authorization: () => bearer(token({ ...es, kid: { $ne: null } })),
    expect: refused("ERR_KEY_NOT_FOUND"),
  },
  {
    name: "attacker's key embedded as `jwk`, signed by the attacker",
    group: "token",
    authorization: () =>
      bearer(craft(keys.attackerEc, { ...es, jwk: keys.attackerEc.publicJwk }, claims())),
    expect: refused("ERR_SIGNATURE_INVALID"),
  },
  {
    name: "attacker's key embedded as `jwk`, with a kid the server lacks",
    group: "token",
    authorization: () =>
      bearer(
        craft(
          keys.attackerEc,
          { ...es, kid: "attacker", jwk: { ...keys.attackerEc.publicJwk, kid: "attacker" } },
          claims(),
        ),
      ),
    expect: refused("ERR_KEY_NOT_FOUND"),
  },
  {
    name: "`jku` pointing at the attacker's JWKS",
    group: "token",
    authorization: (ctx) =>
      bearer(craft(keys.attackerRsa, { ...rs, jku: `${ctx.spyUrl}/jwks.json` }, claims())),
    expect: refused("ERR_SIGNATURE_INVALID"),
  },
  {
    name: "`x5u` pointing at the attacker's certificate",
    group: "token",
    authorization: (ctx) =>
      bearer(craft(keys.attackerEc, { ...es, x5u: `${ctx.spyUrl}/cert.pem` }, claims())),
    expect: refused("ERR_SIGNATURE_INVALID"),
  },
  {
    name: "`x5c` chain carrying the attacker's key",
    group: "token",
    authorization: () =>
      bearer(
        craft(keys.attackerRsa, { ...rs, x5c: [randomBytes(600).toString("base64")] }, claims()),
      ),
    expect: refused("ERR_SIGNATURE_INVALID"),
  },
  {
    name: "`crit` naming an unknown extension",
    group: "token",
    authorization: () => bearer(token({ ...es, crit: ["x-acme"], "x-acme": true })),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "`crit` not an array",
    group: "token",
    authorization: () => bearer(token({ ...es, crit: "b64" })),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "`crit` empty",
    group: "token",
    authorization: () => bearer(token({ ...es, crit: [] })),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "`b64: false` (unencoded payload)",
    group: "token",
    authorization: () => bearer(token({ ...es, b64: false, crit: ["b64"] })),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "JWE compact token (5 segments)",
    group: "token",
    authorization: () =>
      bearer(
        [
          enc({ alg: "RSA-OAEP-256", enc: "A256GCM", kid: rs.kid }),
          randomSegment(256),
          randomSegment(12),
          randomSegment(64),
          randomSegment(16),
        ].join("."),
      ),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "nested JWT (`cty: JWT`, payload another JWT)",
    group: "token",
    authorization: () => bearer(token({ ...es, cty: "JWT" }, token())),
    expect: refused("ERR_TOKEN_MALFORMED"),
  },
  {
    name: "ECDSA r = s = 0 (64 zero bytes)",
    group: "token",
    authorization: () => bearer(withSignature(token(), Buffer.alloc(64).toString("base64url"))),
    expect: refused("ERR_SIGNATURE_INVALID"),
  },
  {
    name: "ECDSA r = s = n (the group order)",
    group: "token",
    authorization: () => {
      const n = Buffer.from(
        "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
        "hex",
      );
      return bearer(withSignature(token(), Buffer.concat([n, n]).toString("base64url")));
    },
    expect: refused("ERR_SIGNATURE_INVALID"),
  },
  {
    name: "RSA signature of zeros",
    group: "token",
    authorization: () =>
      bearer(
        withSignature(craft(keys.rs256, rs, claims()), Buffer.alloc(256).toString("base64url")),
      ),
    expect: refused("ERR_SIGNATURE_INVALID"),
  },
  {
    name: "payload swapped under a valid signature",
    group: "token",
    authorization: () =>
      bearer(`${parts(token())[0]}.${enc(claims({ scope: "admin" }))}.${parts(token())[2]}`),
    expect: refused("ERR_SIGNATURE_INVALID"),
  },
];

const past = () => now() - 3600;
const future = () => now() + 3600;

const claimCases: AttackCase[] = [
  {
    name: "exp in the past",
    group: "claims",
    authorization: () => bearer(token(es, claims({ iat: past() - 60, exp: past() }))),
    expect: refused("ERR_TOKEN_EXPIRED"),
  },
  {
    name: "exp at now minus the clock tolerance (the boundary)",
    group: "claims",
    authorization: () => bearer(token(es, claims({ iat: now() - 60, exp: now() - 5 }))),
    expect: refused("ERR_TOKEN_EXPIRED"),
  },
  {
    name: "exp equal to now (accepted: within the 5 s clock tolerance)",
    group: "claims",
    authorization: () => bearer(token(es, claims({ iat: now() - 60, exp: now() }))),
    expect: accepted,
  },
  {
    name: "exp a string",
    group: "claims",
    authorization: () => bearer(token(es, claims({ exp: String(future()) }))),
    expect: refused("ERR_CLAIM_INVALID"),
  },
  {
    name: "exp 1e999 (a JSON number that parses to Infinity)",
    group: "claims",
    authorization: () =>
      bearer(token(es, JSON.stringify(claims({ exp: 0 })).replace('"exp":0', '"exp":1e999'))),
    expect: refused("ERR_CLAIM_INVALID"),
  },
  {
    name: "exp null",
    group: "claims",
    authorization: () => bearer(token(es, claims({ exp: null }))),
    expect: refused("ERR_CLAIM_INVALID"),
  },
  {
    name: "exp 0",
    group: "claims",
    authorization: () => bearer(token(es, claims({ iat: 0, exp: 0 }))),
    expect: refused("ERR_TOKEN_EXPIRED"),
  },
  {
    name: "nbf in the future",
    group: "claims",
    authorization: () => bearer(token(es, claims({ nbf: future() }))),
    expect: refused("ERR_TOKEN_NOT_YET_VALID"),
  },
  {
    name: "nbf a string",
    group: "claims",
    authorization: () => bearer(token(es, claims({ nbf: String(now()) }))),
    expect: refused("ERR_CLAIM_INVALID"),
  },
  {
    name: "iat in the future",
    group: "claims",
    authorization: () => bearer(token(es, claims({ iat: future(), exp: future() + 60 }))),
    expect: refused("ERR_TOKEN_NOT_YET_VALID"),
  },
  {
    name: "iat a string",
    group: "claims",
    authorization: () => bearer(token(es, claims({ iat: String(now()) }))),
    expect: refused("ERR_CLAIM_INVALID"),
  },
  {
    name: "iss wrong",
    group: "claims",
    authorization: () => bearer(token(es, claims({ iss: "https://evil.example/" }))),
    expect: refused("ERR_ISSUER_INVALID"),
  },
  {
    name: "iss differing only in case",
    group: "claims",
    authorization: () => bearer(token(es, claims({ iss: issuer.toUpperCase() }))),
    expect: refused("ERR_ISSUER_INVALID"),
  },
  {
    name: "iss an array holding the issuer",
    group: "claims",
    authorization: () => bearer(token(es, claims({ iss: [issuer] }))),
    expect: refused("ERR_ISSUER_INVALID"),
  },
  {
    name: "aud wrong",
    group: "claims",
    authorization: () => bearer(token(es, claims({ aud: "another-api" }))),
    expect: refused("ERR_AUDIENCE_INVALID"),
  },
  {
    name: "aud with the audience as a prefix",
    group: "claims",
    authorization: () => bearer(token(es, claims({ aud: `${audience}-evil` }))),
    expect: refused("ERR_AUDIENCE_INVALID"),
  },
  {
    name: "typ wrong (at+jwt)",
    group: "claims",
    authorization: () => bearer(token({ ...es, typ: "at+jwt" })),
    expect: refused("ERR_TYPE_INVALID"),
  },
  {
    name: "typ missing",
    group: "claims",
    authorization: () => bearer(token({ alg: "ES256", kid: es.kid })),
    expect: refused("ERR_TYPE_INVALID"),
  },
  {
    name: "required sub missing",
    group: "claims",
    authorization: () => bearer(token(es, claims({}, ["sub"]))),
    expect: refused("ERR_CLAIM_MISSING"),
  },
  {
    name: "exp missing",
    group: "claims",
    authorization: () => bearer(token(es, claims({}, ["exp"]))),
    expect: refused("ERR_CLAIM_MISSING"),
  },
  {
    name: "iat missing (maxLifetime needs it)",
    group: "claims",
    authorization: () => bearer(token(es, claims({}, ["iat"]))),
    expect: refused("ERR_CLAIM_MISSING"),
  },
  {
    name: "iss missing",
    group: "claims",
    authorization: () => bearer(token(es, claims({}, ["iss"]))),
    expect: refused("ERR_CLAIM_MISSING"),
  },
  {
    name: "aud missing",
    group: "claims",
    authorization: () => bearer(token(es, claims({}, ["aud"]))),
    expect: refused("ERR_CLAIM_MISSING"),
  },
  {
    name: "lifetime over maxLifetime (1h + 1s)",
    group: "claims",
    authorization: () => bearer(token(es, claims({ iat: now(), exp: now() + 3601 }))),
    expect: refused("ERR_LIFETIME_TOO_LONG"),
  },
  {
    name: "lifetime exactly maxLifetime (accepted)",
    group: "claims",
    authorization: () => bearer(token(es, claims({ iat: now(), exp: now() + 3600 }))),
    expect: accepted,
  },
  {
    name: "`__proto__` claim (accepted, grants nothing, pollutes nothing)",
    group: "claims",
    authorization: () => bearer(token(es, protoPayload())),
    expect: {
      accepted: true,
      check(seen) {
        if (Object.getPrototypeOf(seen) !== null) throw new Error("claims have a prototype");
        if (!Object.hasOwn(seen, "__proto__")) throw new Error("__proto__ is not an own claim");
        if (seen.scope !== allScopes) throw new Error("scope changed");
        if ("admin" in ({} as Record<string, unknown>))
          throw new Error("Object.prototype polluted");
      },
    },
  },
  {
    name: "`__proto__.scope: admin` does not satisfy a rule requiring scope admin",
    group: "claims",
    target: "admin",
    authorization: () => bearer(token(es, protoPayload())),
    expect: refused("ERR_INSUFFICIENT_SCOPE"),
  },
];

/** A payload whose own `__proto__` member holds `scope: "admin"` (JSON text: an object literal would set the prototype). */
function protoPayload(): string {
  const text = JSON.stringify(claims());
  return `{"__proto__":{"scope":"admin","admin":true},${text.slice(1)}`;
}

/** Every named case. */
export const attackCases: readonly AttackCase[] = [...headerCases, ...tokenCases, ...claimCases];

/** The message and `WWW-Authenticate` a refusal for `reason` must carry (docs/failures.md). */
export function wireOf(reason: AuthErrorCode): { message: string; challenge: string } {
  const invalidToken = 'Bearer error="invalid_token"';
  switch (reason) {
    case "ERR_TOKEN_MISSING":
      return { message: "missing bearer token", challenge: "Bearer" };
    case "ERR_AUTHORIZATION_MALFORMED":
      return {
        message: "malformed authorization header",
        challenge: 'Bearer error="invalid_request"',
      };
    case "ERR_TOKEN_EXPIRED":
      return { message: "token expired", challenge: invalidToken };
    case "ERR_INSUFFICIENT_SCOPE":
      return {
        message: "insufficient scope",
        challenge: 'Bearer error="insufficient_scope", scope="admin"',
      };
    default:
      return { message: "invalid token", challenge: invalidToken };
  }
}
