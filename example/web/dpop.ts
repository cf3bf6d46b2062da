// DPoP in the page (RFC 9449): a key pair whose private key the page cannot
// export, the proof of the token request, and the two attacks the page shows:
// a proof sent a second time, and a proof with one character changed.
import { fromJson } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";
import { base64url, calculateJwkThumbprint, type JWK, SignJWT } from "jose";
import { type WhoAmIResponse, WhoAmIResponseSchema } from "../../gen/demo/v1/demo_pb.js";
import { createDpopKeyPair, type DpopKeyPair } from "../../src/client/index.js";

/** BrowserKey is the page's DPoP key pair, and what the page found out about it. */
export interface BrowserKey {
  readonly keyPair: DpopKeyPair;
  /** RFC 7638 thumbprint of the public key: the `cnf.jkt` of the tokens bound to it. */
  readonly thumbprint: string;
  /** `privateKey.extractable`, as WebCrypto reports it. */
  readonly extractable: boolean;
  /** Whether `crypto.subtle.exportKey` refused to hand out the private key. */
  readonly exportRefused: boolean;
}

/** createBrowserKey makes a key pair with `createDpopKeyPair()` and tries to export its private key. */
export async function createBrowserKey(): Promise<BrowserKey> {
  const keyPair = await createDpopKeyPair();
  const exportRefused = await crypto.subtle.exportKey("jwk", keyPair.privateKey).then(
    () => false,
    () => true,
  );
  return {
    keyPair,
    thumbprint: await calculateJwkThumbprint(await publicJwk(keyPair)),
    extractable: keyPair.privateKey.extractable,
    exportRefused,
  };
}

/**
 * tokenRequestProof signs the proof of a token request (RFC 9449 §5): `htm`
 * POST and `htu` the token endpoint's URL; no `ath`, as there is no token yet.
 */
export async function tokenRequestProof(keyPair: DpopKeyPair, htu: string): Promise<string> {
  return new SignJWT({ jti: randomId(), htm: "POST", htu })
    .setProtectedHeader({ typ: "dpop+jwt", alg: "ES256", jwk: await publicJwk(keyPair) })
    .setIssuedAt()
    .sign(keyPair.privateKey);
}

/** SentCall is what a WhoAmI call carried: enough to send it again. */
export interface SentCall {
  readonly url: string;
  readonly authorization: string;
  readonly dpop: string;
}

/**
 * recordWhoAmI is an interceptor for after `dpopAuth`: it hands `record` the
 * headers of each admitted WhoAmI call as they went out, proof included.
 */
export function recordWhoAmI(record: (call: SentCall) => void): Interceptor {
  return (next) => async (req) => {
    const authorization = req.header.get("authorization");
    const dpop = req.header.get("dpop");
    const res = await next(req);
    if (req.method.name === "WhoAmI" && authorization !== null && dpop !== null) {
      record({ url: req.url, authorization, dpop });
    }
    return res;
  };
}

/** tamperProofs is an interceptor for after `dpopAuth`: it alters every proof (see {@link tamperProof}). */
export const tamperProofs: Interceptor = (next) => (req) => {
  const proof = req.header.get("dpop");
  if (proof !== null) {
    req.header.set("dpop", tamperProof(proof));
  }
  return next(req);
};

/**
 * tamperProof changes one character of a proof's payload (the last of its
 * `jti`) and keeps the header and signature: the signature no longer fits.
 */
export function tamperProof(proof: string): string {
  const [header = "", payload = "", signature = ""] = proof.split(".");
  const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload))) as {
    jti?: unknown;
  };
  const jti = String(claims.jti ?? "");
  claims.jti = `${jti.slice(0, -1)}${jti.endsWith("A") ? "B" : "A"}`;
  return `${header}.${base64url.encode(JSON.stringify(claims))}.${signature}`;
}

/**
 * sendAgain makes a recorded WhoAmI call once more, with the same
 * `Authorization` and `DPoP` headers, as a plain `fetch` of the Connect
 * protocol (POST, JSON): what someone who copied a call off the wire could do.
 * It resolves to the answer, or to the refusal as a ConnectError.
 */
export async function sendAgain(
  call: SentCall,
  signal: AbortSignal,
): Promise<WhoAmIResponse | ConnectError> {
  const res = await fetch(call.url, {
    method: "POST",
    headers: {
      authorization: call.authorization,
      dpop: call.dpop,
      "content-type": "application/json",
      "connect-protocol-version": "1",
    },
    body: "{}",
    signal,
  });
  const body: unknown = await res.json().catch(() => undefined);
  if (res.ok) {
    return fromJson(WhoAmIResponseSchema, body as never);
  }
  const { code, message } = (body ?? {}) as { code?: unknown; message?: unknown };
  return new ConnectError(
    typeof message === "string" ? message : `HTTP ${res.status}`,
    (typeof code === "string" ? codeFromString(code) : undefined) ?? Code.Unknown,
    res.headers,
  );
}

/** The public key's JWK with its public members only. */
async function publicJwk(keyPair: DpopKeyPair): Promise<JWK> {
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", keyPair.publicKey);
  return { kty, crv, x, y } as JWK;
}

function randomId(): string {
  return base64url.encode(crypto.getRandomValues(new Uint8Array(16)));
}
