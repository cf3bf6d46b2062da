import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { calculateJwkThumbprint, exportJWK, type JWK } from "jose";
import {
  type AuthErrorCode,
  type DpopOptions,
  type JwtAuthOptions,
  memoryReplayStore,
} from "../../../src/index.js";
import {
  ath,
  cnfOf,
  type DpopKey,
  generateDpopKey,
  htuOf,
  makeProof,
  type ProofOptions,
  publicOrigin,
} from "../../helpers/dpop.js";
import type { TransportKind } from "../../helpers/server.js";
import { claims, serverOptions, token } from "./cases.js";
import { craft, enc, parts, type Signer } from "./craft.js";
import type { RawCallKind, RawField } from "./raw-client.js";

// The named attacks on DPoP (RFC 9449): the proof, its binding to the token,
// its replay, and the server's nonces. Each case says which server it runs
// against, what header fields to send and what the server must answer; the
// battery (dpop-battery.test.ts) runs every one on every transport, as a unary
// call and a server stream.

/** The servers under attack, all with DPoP on. */
export type DpopServerName = "optional" | "required" | "nonce" | "throwing-store" | "full-store";

/** The nonce secret of the `nonce` server: the test knows it, to compute stale nonces. */
export const nonceSecret = randomBytes(32);
/** The nonce lifetime of the `nonce` server, in seconds. */
export const nonceLifetime = 60;

/** Where the `throwing-store` server's replay store fails, with a message that must not reach a client. */
const storeFailure = `replay store down at redis://store-${randomBytes(6).toString("hex")}`;

/** What a server is given besides its options: the `dpop` option, and the failure code. */
export interface DpopServer {
  readonly dpop: () => DpopOptions;
  readonly failureCode: Code;
}

export const dpopServers: Record<DpopServerName, DpopServer> = {
  optional: { dpop: () => ({ origins: [publicOrigin] }), failureCode: Code.PermissionDenied },
  required: {
    dpop: () => ({ origins: [publicOrigin], required: true, algorithms: ["ES256", "EdDSA"] }),
    failureCode: Code.Unauthenticated,
  },
  nonce: {
    dpop: () => ({
      origins: [publicOrigin],
      nonce: { secret: nonceSecret, lifetime: nonceLifetime },
    }),
    failureCode: Code.PermissionDenied,
  },
  "throwing-store": {
    dpop: () => ({
      origins: [publicOrigin],
      replayStore: {
        use() {
          throw new Error(storeFailure);
        },
      },
    }),
    failureCode: Code.PermissionDenied,
  },
  "full-store": {
    dpop: () => ({ origins: [publicOrigin], replayStore: memoryReplayStore({ maxEntries: 1 }) }),
    failureCode: Code.PermissionDenied,
  },
};

/** The createJwtAuth options of a server under attack. */
export function dpopServerOptions(name: DpopServerName, extra: Partial<JwtAuthOptions> = {}) {
  const server = dpopServers[name];
  return serverOptions({ dpop: server.dpop(), failureCode: server.failureCode, ...extra });
}

/** The `algs` a server's challenges offer. */
export function algsOf(name: DpopServerName): string {
  return (dpopServers[name].dpop().algorithms ?? ["ES256", "EdDSA", "PS256", "RS256"]).join(" ");
}

/** What the server must do with a call. */
export type DpopExpected =
  /** Refused, with this onDenied reason (the code, message and challenge follow from it). */
  | { readonly reason: AuthErrorCode }
  /** Let through: the handler runs once and sees the token's subject. */
  | { readonly accepted: true };

/** What a case gets to build its fields, and to make the calls that set up the attack. */
export interface DpopCaseContext {
  readonly transport: TransportKind;
  /** The kind of the case's own call. */
  readonly kind: RawCallKind;
  /** The server's address: the origin a client connects to, not the public origin. */
  readonly serverUrl: string;
  /** Per running server: what a case keeps between its runs (e.g. a store it filled). */
  readonly state: Map<string, unknown>;
  /**
   * Makes a call on the same transport, checks it as the case's own call is
   * checked, and returns the `dpop-nonce` it got (null when none).
   */
  expectCall(
    fields: readonly RawField[],
    expected: DpopExpected,
    kind?: RawCallKind,
  ): Promise<string | null>;
}

/** One named attack on DPoP. */
export interface DpopAttackCase {
  readonly name: string;
  readonly server: DpopServerName;
  /** The header fields of the call (besides those of the protocol). */
  readonly fields: (ctx: DpopCaseContext) => Promise<readonly RawField[]>;
  /** Send with the raw client (duplicated or empty fields). */
  readonly raw?: boolean;
  readonly expect: DpopExpected;
}

/** The message, code and `WWW-Authenticate` a refusal for `reason` must carry (docs/failures.md). */
export function dpopWireOf(
  reason: AuthErrorCode,
  server: DpopServerName,
): { message: string; code: Code; challenge: string | null } {
  const algs = `algs="${algsOf(server)}"`;
  const { failureCode } = dpopServers[server];
  const dpop = (error: string) => `DPoP error="${error}", ${algs}`;
  switch (reason) {
    case "ERR_TOKEN_MISSING":
      return {
        message: "missing bearer token",
        code: failureCode,
        challenge: server === "required" ? `DPoP ${algs}` : `Bearer, DPoP ${algs}`,
      };
    case "ERR_DPOP_REPLAY_UNAVAILABLE":
      // Not a judgement of the credentials: no challenge.
      return { message: "authentication unavailable", code: Code.Unavailable, challenge: null };
    case "ERR_DPOP_BINDING_REQUIRED":
      return {
        message: "DPoP-bound token required",
        code: failureCode,
        challenge: dpop("invalid_token"),
      };
    case "ERR_DPOP_NONCE_REQUIRED":
      return {
        message: "DPoP nonce required",
        code: failureCode,
        challenge: dpop("use_dpop_nonce"),
      };
    case "ERR_DPOP_KEY_MISMATCH":
      return { message: "invalid DPoP proof", code: failureCode, challenge: dpop("invalid_token") };
    case "ERR_AUTHORIZATION_MALFORMED":
      return {
        message: "malformed authorization header",
        code: failureCode,
        challenge: `DPoP error="invalid_request", ${algs}`,
      };
    case "ERR_TOKEN_EXPIRED":
      return { message: "token expired", code: failureCode, challenge: dpop("invalid_token") };
    default:
      return reason.startsWith("ERR_DPOP_")
        ? {
            message: "invalid DPoP proof",
            code: failureCode,
            challenge: dpop("invalid_dpop_proof"),
          }
        : { message: "invalid token", code: failureCode, challenge: dpop("invalid_token") };
  }
}

/** The nonce of time window `window` under {@link nonceSecret}, computed as a replica would. */
export function nonceOfWindow(window: number): string {
  return createHmac("sha256", nonceSecret).update(`dpop-nonce ${window}`).digest("base64url");
}

/** The nonce window now. */
export function nonceWindow(): number {
  return Math.floor(Date.now() / 1000 / nonceLifetime);
}

/** Waits, when the nonce window is about to change, until it has changed. */
async function awayFromWindowEdge(): Promise<void> {
  const left = nonceLifetime * 1000 - (Date.now() % (nonceLifetime * 1000));
  if (left < 2000) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

// ---- Keys, tokens and proofs ------------------------------------------------

/** The client's key; the keys of others. */
const keys = {
  client: await generateDpopKey("ES256"),
  other: await generateDpopKey("ES256"),
  ed: await generateDpopKey("EdDSA"),
  rsa: await generateDpopKey("RS256"),
  ps: await generateDpopKey("PS256"),
  es384: await generateDpopKey("ES384"),
  rsa1024: await weakRsaKey(),
};

/** A 1024-bit RSA key, which jose will not make and the server must refuse. */
async function weakRsaKey(): Promise<DpopKey> {
  const { privateKey, publicKey } = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 1024,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
  const publicJwk = await exportJWK(publicKey);
  delete publicJwk.alg;
  delete publicJwk.key_ops;
  delete publicJwk.ext;
  return {
    alg: "RS256",
    privateKey,
    publicJwk,
    thumbprint: await calculateJwkThumbprint(publicJwk),
  };
}

/** A good token bound to `key` (by default the client's). */
const bound = (key: DpopKey = keys.client, extra: Record<string, unknown> = {}) =>
  token(undefined, claims({ ...cnfOf(key), ...extra }));

/** A good proof by `key` for `t` and the case's call, with `options` over it. */
const proofFor = (
  ctx: DpopCaseContext,
  t: string,
  key: DpopKey = keys.client,
  options: Partial<ProofOptions> = {},
) => makeProof(key, { token: t, htu: htuOf(ctx.kind), ...options });

/** The claims of a good proof for `t` and the case's call. */
function proofClaims(ctx: DpopCaseContext, t: string): Record<string, unknown> {
  return {
    jti: randomUUID(),
    htm: "POST",
    htu: htuOf(ctx.kind),
    iat: Math.floor(Date.now() / 1000),
    ath: ath(t),
  };
}

/** A proof signed byte for byte as given (node:crypto signs any header), by `signer`. */
function craftProof(
  signer: Signer,
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  signAs?: string,
): string {
  return craft(signer, header, payload, signAs);
}

/** The proof header of `key`, with `extra` over it. */
const headerOf = (key: DpopKey, extra: Record<string, unknown> = {}) => ({
  typ: "dpop+jwt",
  alg: key.alg,
  jwk: key.publicJwk,
  ...extra,
});

/** The fields of a DPoP call. */
const dpopFields = (t: string, proof: string): RawField[] => [
  ["authorization", `DPoP ${t}`],
  ["dpop", proof],
];

/** A good call of the case's kind: a bound token and its proof. */
async function goodCall(ctx: DpopCaseContext, key: DpopKey = keys.client): Promise<RawField[]> {
  const t = bound(key);
  return dpopFields(t, await proofFor(ctx, t, key));
}

/** A proof whose header is `header` (over the client key's), signed by the client's key. */
async function withHeader(ctx: DpopCaseContext, header: Record<string, unknown>) {
  const t = bound();
  return dpopFields(t, craftProof(keys.client, headerOf(keys.client, header), proofClaims(ctx, t)));
}

/** A proof by the client's key with `claims` over (and `omit` out of) a good proof's. */
async function withClaims(
  ctx: DpopCaseContext,
  over: Record<string, unknown>,
  omit: readonly string[] = [],
) {
  const t = bound();
  const payload = { ...proofClaims(ctx, t), ...over };
  for (const name of omit) delete payload[name];
  return dpopFields(t, craftProof(keys.client, headerOf(keys.client), payload));
}

const now = () => Math.floor(Date.now() / 1000);
const refused = (reason: AuthErrorCode): DpopExpected => ({ reason });
const accepted: DpopExpected = { accepted: true };
const otherKind = (kind: RawCallKind): RawCallKind =>
  kind === "unary" ? "server-streaming" : "unary";
/** The path of the case's method on `origin`. */
const pathOn = (ctx: DpopCaseContext, origin: string) => htuOf(ctx.kind, origin);

const optionalServerCases: DpopAttackCase[] = [
  {
    name: "a bound token and its proof (accepted: the battery's baseline)",
    server: "optional",
    fields: (ctx) => goodCall(ctx),
    expect: accepted,
  },
  {
    name: "an EdDSA key (accepted)",
    server: "optional",
    fields: (ctx) => goodCall(ctx, keys.ed),
    expect: accepted,
  },
  {
    name: "a PS256 key (accepted)",
    server: "optional",
    fields: (ctx) => goodCall(ctx, keys.ps),
    expect: accepted,
  },
  {
    name: "replay: the same proof twice on the same method",
    server: "optional",
    async fields(ctx) {
      const fields = await goodCall(ctx);
      await ctx.expectCall(fields, accepted);
      return fields;
    },
    expect: refused("ERR_DPOP_REPLAYED"),
  },
  {
    name: "replay: the proof of an admitted call sent to another method",
    server: "optional",
    async fields(ctx) {
      const t = bound();
      const other = otherKind(ctx.kind);
      const fields = dpopFields(t, await makeProof(keys.client, { token: t, htu: htuOf(other) }));
      await ctx.expectCall(fields, accepted, other);
      return fields;
    },
    expect: refused("ERR_DPOP_URL_MISMATCH"),
  },
  {
    name: "replay: a refused proof's jti is not spent (the store records verified proofs only)",
    server: "optional",
    async fields(ctx) {
      const t = bound();
      const payload = proofClaims(ctx, t);
      // Signed by another key under the client's jwk: refused at the signature.
      const forged = craftProof(keys.other, headerOf(keys.client), payload);
      await ctx.expectCall(dpopFields(t, forged), refused("ERR_DPOP_SIGNATURE_INVALID"));
      return dpopFields(t, craftProof(keys.client, headerOf(keys.client), payload));
    },
    expect: accepted,
  },
  {
    name: "replay: the same jti under another key (accepted: the key and jti pair is what counts)",
    server: "optional",
    async fields(ctx) {
      const jti = randomUUID();
      const first = bound();
      const firstProof = await proofFor(ctx, first, keys.client, { claims: { jti } });
      await ctx.expectCall(dpopFields(first, firstProof), accepted);
      const t = bound(keys.other);
      return dpopFields(t, await proofFor(ctx, t, keys.other, { claims: { jti } }));
    },
    expect: accepted,
  },
  {
    name: "htm GET on a POST",
    server: "optional",
    fields: (ctx) => withClaims(ctx, { htm: "GET" }),
    expect: refused("ERR_DPOP_METHOD_MISMATCH"),
  },
  {
    name: "htm in lower case",
    server: "optional",
    fields: (ctx) => withClaims(ctx, { htm: "post" }),
    expect: refused("ERR_DPOP_METHOD_MISMATCH"),
  },
  {
    name: "htu with another scheme (http)",
    server: "optional",
    fields: (ctx) => withClaims(ctx, { htu: pathOn(ctx, "http://api.connect-jwt.test") }),
    expect: refused("ERR_DPOP_URL_MISMATCH"),
  },
  {
    name: "htu with another host",
    server: "optional",
    fields: (ctx) => withClaims(ctx, { htu: pathOn(ctx, "https://evil.connect-jwt.test") }),
    expect: refused("ERR_DPOP_URL_MISMATCH"),
  },
  {
    name: "htu with another port",
    server: "optional",
    fields: (ctx) => withClaims(ctx, { htu: pathOn(ctx, "https://api.connect-jwt.test:8443") }),
    expect: refused("ERR_DPOP_URL_MISMATCH"),
  },
  {
    name: "htu naming the address the server listens on (the Host header), not its public origin",
    server: "optional",
    fields: (ctx) => withClaims(ctx, { htu: pathOn(ctx, ctx.serverUrl) }),
    expect: refused("ERR_DPOP_URL_MISMATCH"),
  },
  {
    name: "htu with another path",
    server: "optional",
    fields: (ctx) => withClaims(ctx, { htu: `${publicOrigin}/demo.v1.DemoService/Ping` }),
    expect: refused("ERR_DPOP_URL_MISMATCH"),
  },
  {
    name: "htu with a query",
    server: "optional",
    fields: (ctx) => withClaims(ctx, { htu: `${htuOf(ctx.kind)}?a=1` }),
    expect: refused("ERR_DPOP_URL_MISMATCH"),
  },
  {
    name: "htu with an empty query",
    server: "optional",
    fields: (ctx) => withClaims(ctx, { htu: `${htuOf(ctx.kind)}?` }),
    expect: refused("ERR_DPOP_URL_MISMATCH"),
  },
  {
    name: "htu with a fragment",
    server: "optional",
    fields: (ctx) => withClaims(ctx, { htu: `${htuOf(ctx.kind)}#f` }),
    expect: refused("ERR_DPOP_URL_MISMATCH"),
  },
  {
    name: "htu with credentials",
    server: "optional",
    fields: (ctx) => withClaims(ctx, { htu: pathOn(ctx, "https://user@api.connect-jwt.test") }),
    expect: refused("ERR_DPOP_URL_MISMATCH"),
  },
  {
    name: "htu with the scheme and host in upper case and the default port (accepted: RFC 3986)",
    server: "optional",
    fields: (ctx) => withClaims(ctx, { htu: pathOn(ctx, "HTTPS://API.Connect-JWT.test:443") }),
    expect: accepted,
  },
  {
    name: "htu with the path in another case",
    server: "optional",
    fields: (ctx) =>
      withClaims(ctx, { htu: htuOf(ctx.kind).replace("DemoService", "demoservice") }),
    expect: refused("ERR_DPOP_URL_MISMATCH"),
  },
  {
    name: "stale iat (10 minutes old)",
    server: "optional",
    fields: (ctx) => withClaims(ctx, { iat: now() - 600 }),
    expect: refused("ERR_DPOP_PROOF_EXPIRED"),
  },
  {
    name: "future iat (1 minute ahead)",
    server: "optional",
    fields: (ctx) => withClaims(ctx, { iat: now() + 60 }),
    expect: refused("ERR_DPOP_PROOF_NOT_YET_VALID"),
  },
  {
    name: "iat a string",
    server: "optional",
    fields: (ctx) => withClaims(ctx, { iat: String(now()) }),
    expect: refused("ERR_DPOP_PROOF_MALFORMED"),
  },
  {
    name: "jti missing",
    server: "optional",
    fields: (ctx) => withClaims(ctx, {}, ["jti"]),
    expect: refused("ERR_DPOP_PROOF_MALFORMED"),
  },
  {
    name: "ath missing",
    server: "optional",
    fields: (ctx) => withClaims(ctx, {}, ["ath"]),
    expect: refused("ERR_DPOP_PROOF_MALFORMED"),
  },
  {
    name: "ath wrong",
    server: "optional",
    fields: (ctx) => withClaims(ctx, { ath: ath("another token") }),
    expect: refused("ERR_DPOP_ATH_MISMATCH"),
  },
  {
    name: "a proof made for another token of the same key",
    server: "optional",
    async fields(ctx) {
      const t = bound();
      const other = bound(keys.client, { jti: randomUUID() });
      return dpopFields(t, await proofFor(ctx, other));
    },
    expect: refused("ERR_DPOP_ATH_MISMATCH"),
  },
  {
    name: "cnf.jkt mismatch: the token is bound to another key",
    server: "optional",
    async fields(ctx) {
      const t = bound(keys.other);
      return dpopFields(t, await proofFor(ctx, t));
    },
    expect: refused("ERR_DPOP_KEY_MISMATCH"),
  },
  {
    name: "an unbound token with a DPoP proof",
    server: "optional",
    async fields(ctx) {
      const t = token();
      return dpopFields(t, await proofFor(ctx, t));
    },
    expect: refused("ERR_DPOP_KEY_MISMATCH"),
  },
  {
    name: "Bearer downgrade of a bound token",
    server: "optional",
    fields: async () => [["authorization", `Bearer ${bound()}`]],
    expect: refused("ERR_DPOP_BINDING_REQUIRED"),
  },
  {
    name: "Bearer downgrade of a bound token, its proof attached",
    server: "optional",
    async fields(ctx) {
      const t = bound();
      return [
        ["authorization", `Bearer ${t}`],
        ["dpop", await proofFor(ctx, t)],
      ];
    },
    expect: refused("ERR_DPOP_BINDING_REQUIRED"),
  },
  {
    name: "a plain Bearer token (accepted: DPoP is not required)",
    server: "optional",
    fields: async () => [["authorization", `Bearer ${token()}`]],
    expect: accepted,
  },
  {
    name: "no authorization: the challenge offers Bearer and DPoP",
    server: "optional",
    fields: async () => [],
    expect: refused("ERR_TOKEN_MISSING"),
  },
  {
    name: "Authorization: DPoP with an expired token and a good proof",
    server: "optional",
    async fields(ctx) {
      const t = bound(keys.client, { iat: now() - 600, exp: now() - 300 });
      return dpopFields(t, await proofFor(ctx, t));
    },
    expect: refused("ERR_TOKEN_EXPIRED"),
  },
  {
    name: "Authorization: DPoP with a token signed by another key",
    server: "optional",
    async fields(ctx) {
      const [h, p] = parts(bound());
      const t = `${h}.${p}.${parts(token())[2]}`;
      return dpopFields(t, await proofFor(ctx, t));
    },
    expect: refused("ERR_SIGNATURE_INVALID"),
  },
  {
    name: "Authorization: dpop, the scheme in lower case (accepted)",
    server: "optional",
    async fields(ctx) {
      const t = bound();
      return [
        ["authorization", `dpop ${t}`],
        ["dpop", await proofFor(ctx, t)],
      ];
    },
    expect: accepted,
  },
  {
    name: "Authorization: DPoP and no token",
    server: "optional",
    async fields(ctx) {
      return [
        ["authorization", "DPoP"],
        ["dpop", await proofFor(ctx, bound())],
      ];
    },
    expect: refused("ERR_AUTHORIZATION_MALFORMED"),
  },
  {
    name: "Authorization: DPoP, a tab, the token",
    server: "optional",
    async fields(ctx) {
      const t = bound();
      return [
        ["authorization", `DPoP\t${t}`],
        ["dpop", await proofFor(ctx, t)],
      ];
    },
    expect: refused("ERR_AUTHORIZATION_MALFORMED"),
  },
  {
    name: "Authorization: DPoP without a proof",
    server: "optional",
    fields: async () => [["authorization", `DPoP ${bound()}`]],
    expect: refused("ERR_DPOP_PROOF_MISSING"),
  },
  {
    name: "an empty DPoP header",
    server: "optional",
    raw: true,
    fields: async () => dpopFields(bound(), ""),
    expect: refused("ERR_DPOP_PROOF_MISSING"),
  },
  {
    name: "two DPoP headers, both good proofs",
    server: "optional",
    raw: true,
    async fields(ctx) {
      const t = bound();
      return [...dpopFields(t, await proofFor(ctx, t)), ["dpop", await proofFor(ctx, t)]];
    },
    expect: refused("ERR_DPOP_PROOF_MALFORMED"),
  },
  {
    name: "two DPoP headers, the same proof twice",
    server: "optional",
    raw: true,
    async fields(ctx) {
      const t = bound();
      const proof = await proofFor(ctx, t);
      return [...dpopFields(t, proof), ["dpop", proof]];
    },
    expect: refused("ERR_DPOP_PROOF_MALFORMED"),
  },
  {
    name: "an EC private key (d) in jwk",
    server: "optional",
    async fields(ctx) {
      const jwk = await exportJWK(keys.client.privateKey);
      return withHeader(ctx, { jwk });
    },
    expect: refused("ERR_DPOP_KEY_INVALID"),
  },
  {
    name: "RSA private members in jwk",
    server: "optional",
    async fields(ctx) {
      const t = bound(keys.rsa);
      const jwk = await exportJWK(keys.rsa.privateKey);
      return dpopFields(t, craftProof(keys.rsa, headerOf(keys.rsa, { jwk }), proofClaims(ctx, t)));
    },
    expect: refused("ERR_DPOP_KEY_INVALID"),
  },
  {
    name: "one RSA private member (p) in jwk",
    server: "optional",
    async fields(ctx) {
      const t = bound(keys.rsa);
      const { p } = await exportJWK(keys.rsa.privateKey);
      const jwk = { ...keys.rsa.publicJwk, p };
      return dpopFields(t, craftProof(keys.rsa, headerOf(keys.rsa, { jwk }), proofClaims(ctx, t)));
    },
    expect: refused("ERR_DPOP_KEY_INVALID"),
  },
  {
    name: "a symmetric oct key in jwk",
    server: "optional",
    async fields(ctx) {
      const secret = randomBytes(32);
      const jwk: JWK = { kty: "oct", k: secret.toString("base64url") };
      const t = token(undefined, claims({ cnf: { jkt: await calculateJwkThumbprint(jwk) } }));
      return dpopFields(
        t,
        craftProof(keys.client, headerOf(keys.client, { jwk }), proofClaims(ctx, t)),
      );
    },
    expect: refused("ERR_DPOP_KEY_INVALID"),
  },
  {
    name: "a P-384 key under alg ES256",
    server: "optional",
    async fields(ctx) {
      const t = bound(keys.es384);
      const header = headerOf(keys.es384, { alg: "ES256" });
      return dpopFields(t, craftProof(keys.es384, header, proofClaims(ctx, t), "ES384"));
    },
    expect: refused("ERR_DPOP_KEY_INVALID"),
  },
  {
    name: "a 1024-bit RSA key",
    server: "optional",
    async fields(ctx) {
      const t = bound(keys.rsa1024);
      return dpopFields(t, craftProof(keys.rsa1024, headerOf(keys.rsa1024), proofClaims(ctx, t)));
    },
    expect: refused("ERR_DPOP_KEY_INVALID"),
  },
  {
    name: "jwk missing",
    server: "optional",
    fields: (ctx) => withHeader(ctx, { jwk: undefined }),
    expect: refused("ERR_DPOP_KEY_INVALID"),
  },
  {
    name: "alg none, no signature",
    server: "optional",
    async fields(ctx) {
      const t = bound();
      const unsigned = `${enc(headerOf(keys.client, { alg: "none" }))}.${enc(proofClaims(ctx, t))}.`;
      return dpopFields(t, unsigned);
    },
    expect: refused("ERR_DPOP_PROOF_MALFORMED"),
  },
  {
    name: "alg none, with a signature",
    server: "optional",
    fields: (ctx) => withHeader(ctx, { alg: "none" }),
    expect: refused("ERR_DPOP_ALGORITHM_NOT_ALLOWED"),
  },
  {
    name: "alg HS256, keyed with the public jwk's x",
    server: "optional",
    async fields(ctx) {
      const t = bound();
      const secret = String(keys.client.publicJwk.x);
      const header = headerOf(keys.client, { alg: "HS256" });
      return dpopFields(t, craftProof({ secret }, header, proofClaims(ctx, t)));
    },
    expect: refused("ERR_DPOP_ALGORITHM_NOT_ALLOWED"),
  },
  {
    name: "an alg not in dpop.algorithms (ES384)",
    server: "optional",
    async fields(ctx) {
      const t = bound(keys.es384);
      return dpopFields(t, await proofFor(ctx, t, keys.es384));
    },
    expect: refused("ERR_DPOP_ALGORITHM_NOT_ALLOWED"),
  },
  {
    name: "typ missing",
    server: "optional",
    fields: (ctx) => withHeader(ctx, { typ: undefined }),
    expect: refused("ERR_DPOP_TYPE_INVALID"),
  },
  {
    name: "typ JWT",
    server: "optional",
    fields: (ctx) => withHeader(ctx, { typ: "JWT" }),
    expect: refused("ERR_DPOP_TYPE_INVALID"),
  },
  {
    name: "typ at+jwt",
    server: "optional",
    fields: (ctx) => withHeader(ctx, { typ: "at+jwt" }),
    expect: refused("ERR_DPOP_TYPE_INVALID"),
  },
  {
    name: "typ application/dpop+jwt",
    server: "optional",
    fields: (ctx) => withHeader(ctx, { typ: "application/dpop+jwt" }),
    expect: refused("ERR_DPOP_TYPE_INVALID"),
  },
  {
    name: "`crit` naming an extension",
    server: "optional",
    fields: (ctx) => withHeader(ctx, { crit: ["x-acme"], "x-acme": true }),
    expect: refused("ERR_DPOP_PROOF_MALFORMED"),
  },
  {
    name: 'an unencoded payload (`b64: false`, `crit: ["b64"]`)',
    server: "optional",
    fields: (ctx) => withHeader(ctx, { b64: false, crit: ["b64"] }),
    expect: refused("ERR_DPOP_PROOF_MALFORMED"),
  },
  {
    name: "a proof over maxProofSize (8 KiB + 1 KiB)",
    server: "optional",
    fields: (ctx) => withClaims(ctx, { pad: "x".repeat(7000) }),
    expect: refused("ERR_DPOP_PROOF_TOO_LARGE"),
  },
  {
    name: "a proof that is not a JWS",
    server: "optional",
    fields: async () => dpopFields(bound(), "not-a-proof"),
    expect: refused("ERR_DPOP_PROOF_MALFORMED"),
  },
  {
    name: "a proof of five segments (JWE-shaped)",
    server: "optional",
    async fields(ctx) {
      const t = bound();
      return dpopFields(t, `${await proofFor(ctx, t)}.AAAA.AAAA`);
    },
    expect: refused("ERR_DPOP_PROOF_MALFORMED"),
  },
  {
    name: "a header that is not JSON",
    server: "optional",
    async fields(ctx) {
      const t = bound();
      const [, p, s] = parts(await proofFor(ctx, t));
      return dpopFields(t, `${enc('{"typ":"dpop+jwt",')}.${p}.${s}`);
    },
    expect: refused("ERR_DPOP_PROOF_MALFORMED"),
  },
  {
    name: "a payload that is not JSON",
    server: "optional",
    async fields(ctx) {
      const t = bound();
      const [h, , s] = parts(await proofFor(ctx, t));
      return dpopFields(t, `${h}.${enc("jti=1&htm=POST")}.${s}`);
    },
    expect: refused("ERR_DPOP_PROOF_MALFORMED"),
  },
  {
    name: "a bad signature (the payload changed after signing)",
    server: "optional",
    async fields(ctx) {
      const t = bound();
      const [h, , s] = parts(await proofFor(ctx, t));
      return dpopFields(t, `${h}.${enc(proofClaims(ctx, t))}.${s}`);
    },
    expect: refused("ERR_DPOP_SIGNATURE_INVALID"),
  },
  {
    name: "a signature by another key under the client's jwk",
    server: "optional",
    async fields(ctx) {
      const t = bound();
      return dpopFields(t, craftProof(keys.other, headerOf(keys.client), proofClaims(ctx, t)));
    },
    expect: refused("ERR_DPOP_SIGNATURE_INVALID"),
  },
];

const requiredServerCases: DpopAttackCase[] = [
  {
    name: "required: a bound token and its proof (accepted)",
    server: "required",
    fields: (ctx) => goodCall(ctx),
    expect: accepted,
  },
  {
    name: "required: a plain Bearer token",
    server: "required",
    fields: async () => [["authorization", `Bearer ${token()}`]],
    expect: refused("ERR_DPOP_BINDING_REQUIRED"),
  },
  {
    name: "required: Bearer downgrade of a bound token",
    server: "required",
    fields: async () => [["authorization", `Bearer ${bound()}`]],
    expect: refused("ERR_DPOP_BINDING_REQUIRED"),
  },
  {
    name: "required: an unbound token with a DPoP proof",
    server: "required",
    async fields(ctx) {
      const t = token();
      return dpopFields(t, await proofFor(ctx, t));
    },
    expect: refused("ERR_DPOP_KEY_MISMATCH"),
  },
  {
    name: "required: no authorization, the challenge is DPoP alone",
    server: "required",
    fields: async () => [],
    expect: refused("ERR_TOKEN_MISSING"),
  },
  {
    name: "required: an alg left out of dpop.algorithms (PS256)",
    server: "required",
    fields: (ctx) => goodCall(ctx, keys.ps),
    expect: refused("ERR_DPOP_ALGORITHM_NOT_ALLOWED"),
  },
  {
    name: "required: replay",
    server: "required",
    async fields(ctx) {
      const fields = await goodCall(ctx, keys.ed);
      await ctx.expectCall(fields, accepted);
      return fields;
    },
    expect: refused("ERR_DPOP_REPLAYED"),
  },
];

const nonceServerCases: DpopAttackCase[] = [
  {
    name: "nonce: missing",
    server: "nonce",
    fields: (ctx) => goodCall(ctx),
    expect: refused("ERR_DPOP_NONCE_REQUIRED"),
  },
  {
    name: "nonce: stale (from two windows ago)",
    server: "nonce",
    fields: (ctx) => withClaims(ctx, { nonce: nonceOfWindow(nonceWindow() - 2) }),
    expect: refused("ERR_DPOP_NONCE_REQUIRED"),
  },
  {
    name: "nonce: from a window yet to come",
    server: "nonce",
    fields: (ctx) => withClaims(ctx, { nonce: nonceOfWindow(nonceWindow() + 1) }),
    expect: refused("ERR_DPOP_NONCE_REQUIRED"),
  },
  {
    name: "nonce: forged (random)",
    server: "nonce",
    fields: (ctx) => withClaims(ctx, { nonce: randomBytes(32).toString("base64url") }),
    expect: refused("ERR_DPOP_NONCE_REQUIRED"),
  },
  {
    name: "nonce: made under another secret",
    server: "nonce",
    fields: (ctx) =>
      withClaims(ctx, {
        nonce: createHmac("sha256", randomBytes(32))
          .update(`dpop-nonce ${nonceWindow()}`)
          .digest("base64url"),
      }),
    expect: refused("ERR_DPOP_NONCE_REQUIRED"),
  },
  {
    name: "nonce: a number",
    server: "nonce",
    fields: (ctx) => withClaims(ctx, { nonce: nonceWindow() }),
    expect: refused("ERR_DPOP_NONCE_REQUIRED"),
  },
  {
    name: "nonce: the previous window's (accepted)",
    server: "nonce",
    async fields(ctx) {
      await awayFromWindowEdge();
      return withClaims(ctx, { nonce: nonceOfWindow(nonceWindow() - 1) });
    },
    expect: accepted,
  },
  {
    name: "nonce: refused with a DPoP-Nonce, then the proof carrying it is admitted",
    server: "nonce",
    async fields(ctx) {
      const t = bound();
      const nonce = await ctx.expectCall(
        dpopFields(t, await proofFor(ctx, t)),
        refused("ERR_DPOP_NONCE_REQUIRED"),
      );
      if (nonce === null) throw new Error("the refusal carried no DPoP-Nonce");
      return dpopFields(t, await proofFor(ctx, t, keys.client, { claims: { nonce } }));
    },
    expect: accepted,
  },
  {
    name: "nonce: a current nonce does not excuse a replay",
    server: "nonce",
    async fields(ctx) {
      const t = bound();
      const proof = await proofFor(ctx, t, keys.client, {
        claims: { nonce: nonceOfWindow(nonceWindow()) },
      });
      await ctx.expectCall(dpopFields(t, proof), accepted);
      return dpopFields(t, proof);
    },
    expect: refused("ERR_DPOP_REPLAYED"),
  },
];

const storeCases: DpopAttackCase[] = [
  {
    name: "a replay store that throws: Unavailable, fail closed",
    server: "throwing-store",
    fields: (ctx) => goodCall(ctx),
    expect: refused("ERR_DPOP_REPLAY_UNAVAILABLE"),
  },
  {
    name: "a replay store that throws: a bad proof is still refused as bad",
    server: "throwing-store",
    fields: (ctx) => withClaims(ctx, { htm: "GET" }),
    expect: refused("ERR_DPOP_METHOD_MISMATCH"),
  },
  {
    name: "a full replay store (maxEntries 1): Unavailable rather than forgetting",
    server: "full-store",
    async fields(ctx) {
      if (ctx.state.get("filled") !== true) {
        // The first proof this server sees fills its store.
        await ctx.expectCall(await goodCall(ctx), accepted);
        ctx.state.set("filled", true);
      }
      return goodCall(ctx);
    },
    expect: refused("ERR_DPOP_REPLAY_UNAVAILABLE"),
  },
];

/** Every named DPoP case. */
export const dpopAttackCases: readonly DpopAttackCase[] = [
  ...optionalServerCases,
  ...requiredServerCases,
  ...nonceServerCases,
  ...storeCases,
];

/** Secrets no answer may show, besides the credentials sent. */
export const dpopSecrets: readonly string[] = [storeFailure, nonceSecret.toString("base64url")];
