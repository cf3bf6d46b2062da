import { createHash, randomUUID } from "node:crypto";
import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  type JWK,
  SignJWT,
} from "jose";
import type { CallKind } from "./server.js";
import { methodOf } from "./server.js";

/** The public origin the DPoP test servers answer as, whatever address they listen on. */
export const publicOrigin = "https://api.connect-jwt.test";

/** A client's DPoP key: the private key that signs proofs, the public JWK they carry, its thumbprint. */
export interface DpopKey {
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  /** RFC 7638 thumbprint of the public JWK: the token's `cnf.jkt`. */
  readonly thumbprint: string;
}

/** generateDpopKey makes a fresh DPoP key pair for `alg`. */
export async function generateDpopKey(alg = "ES256"): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { alg, privateKey, publicJwk, thumbprint: await calculateJwkThumbprint(publicJwk) };
}

/** The `cnf` claim that binds a token to `key`. */
export function cnfOf(key: DpopKey): { cnf: { jkt: string } } {
  return { cnf: { jkt: key.thumbprint } };
}

/** ath is base64url(SHA-256(token)), the proof's hash of the access token. */
export function ath(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

/** The `htu` of a demo method at {@link publicOrigin}. */
export function htuOf(kind: CallKind, origin = publicOrigin): string {
  return `${origin}/demo.v1.DemoService/${methodOf[kind]}`;
}

/** Options for {@link makeProof}: a valid proof by default, anything overridable. */
export interface ProofOptions {
  /** The token the proof is for (its `ath`). */
  token: string;
  /** Default `htuOf("unary")`. */
  htu?: string;
  /** Default POST. */
  htm?: string;
  /** Claims merged over the defaults (jti, htm, htu, iat, ath). */
  claims?: Record<string, unknown>;
  /** Claims to drop from the defaults. */
  omit?: readonly string[];
  /** Header members merged over `{ typ: "dpop+jwt", alg, jwk }`. */
  header?: Record<string, unknown>;
}

/** makeProof signs a DPoP proof with `key`. */
export async function makeProof(key: DpopKey, options: ProofOptions): Promise<string> {
  const payload: Record<string, unknown> = {
    jti: randomUUID(),
    htm: options.htm ?? "POST",
    htu: options.htu ?? htuOf("unary"),
    iat: Math.floor(Date.now() / 1000),
    ath: ath(options.token),
    ...options.claims,
  };
  for (const name of options.omit ?? []) {
    delete payload[name];
  }
  const header = { typ: "dpop+jwt", alg: key.alg, jwk: key.publicJwk, ...options.header };
  return new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(key.privateKey);
}

/** The headers of a DPoP call: `Authorization: DPoP <token>` and the proof. */
export function dpopHeaders(token: string, proof: string): Record<string, string> {
  return { authorization: `DPoP ${token}`, dpop: proof };
}
