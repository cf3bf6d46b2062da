// DPoP for the benchmarks: a client key, tokens bound to it, and proofs.
import { createHash, generateKeyPairSync } from "node:crypto";
import { type KeyMaterial, methodPath, type Signer, signer, validClaims } from "./keys.js";

/** The public origin the DPoP benchmark servers answer as. */
export const dpopOrigin = "https://bench.connect-jwt.example";
export const dpopHtu = `${dpopOrigin}${methodPath}`;

/** A client's DPoP key: its signer (proofs carry its public JWK) and its thumbprint. */
export interface DpopClient {
  readonly sign: Signer;
  readonly jwk: Record<string, string>;
  readonly jkt: string;
}

/** dpopClient makes a fresh ES256 key for proofs. */
export function dpopClient(): DpopClient {
  const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const material: KeyMaterial = {
    alg: "ES256",
    privatePem: pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  };
  const { crv, kty, x, y } = pair.publicKey.export({ format: "jwk" }) as Record<string, string>;
  const jwk = { crv: crv ?? "", kty: kty ?? "", x: x ?? "", y: y ?? "" };
  // RFC 7638: the required members in lexicographic order, no whitespace.
  const jkt = createHash("sha256").update(JSON.stringify(jwk)).digest("base64url");
  return { sign: signer(material), jwk, jkt };
}

/** A token signed by `issuerSigner`, bound to the client's key. */
export function boundToken(issuerSigner: Signer, client: DpopClient, i: number): string {
  return issuerSigner({ ...validClaims(i), cnf: { jkt: client.jkt } });
}

/** A proof for `token`, a POST to the benchmark's method unless `htm` says otherwise. */
export function proof(client: DpopClient, token: string, i: number, htm = "POST"): string {
  return client.sign(
    {
      jti: `proof-${i}-${Math.random().toString(36).slice(2)}`,
      htm,
      htu: dpopHtu,
      iat: Math.floor(Date.now() / 1000),
      ath: createHash("sha256").update(token).digest("base64url"),
    },
    { typ: "dpop+jwt", jwk: client.jwk },
  );
}
