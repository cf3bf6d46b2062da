// Keys and tokens for the benchmarks. Tokens are signed with node:crypto
// directly (a few µs each), so that hundreds of thousands of distinct tokens
// can be minted before a run; the servers under test verify them with jose.
import {
  createHmac,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
} from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The algorithms every configuration is measured with. */
export const algorithms = ["HS256", "RS256", "ES256", "EdDSA"] as const;
export type Alg = (typeof algorithms)[number];

/** What every server under test expects of a token. */
export const issuer = "https://issuer.bench.example/";
export const audience = "connect-jwt-bench";

/** The one small unary method every configuration serves. */
export const methodPath = "/demo.v1.DemoService/WhoAmI";

/** Where keys and minted tokens are kept between runs (tokens live a day). */
export const cacheDir = join(tmpdir(), "connect-jwt-bench");

/** Key material, as files hold it. */
export interface KeyMaterial {
  readonly alg: Alg;
  /** HS256: the secret, 43 base64url characters; its UTF-8 bytes are the key. */
  readonly secret?: string;
  /** Asymmetric: SPKI PEM. */
  readonly publicPem?: string;
  /** Asymmetric: PKCS#8 PEM. */
  readonly privatePem?: string;
}

/** keyFile is the path of the key material for `alg`, created on first use. */
export function keyFile(alg: Alg): string {
  const path = join(cacheDir, `key-${alg}.json`);
  if (!existsSync(path)) {
    mkdirSync(cacheDir, { recursive: true });
    writeAtomically(path, JSON.stringify(generate(alg)));
  }
  return path;
}

export function readKey(alg: Alg): KeyMaterial {
  return JSON.parse(readFileSync(keyFile(alg), "utf8")) as KeyMaterial;
}

function generate(alg: Alg): KeyMaterial {
  if (alg === "HS256") {
    return { alg, secret: randomBytes(32).toString("base64url") };
  }
  const pair =
    alg === "RS256"
      ? generateKeyPairSync("rsa", { modulusLength: 2048 })
      : alg === "ES256"
        ? generateKeyPairSync("ec", { namedCurve: "P-256" })
        : generateKeyPairSync("ed25519");
  return {
    alg,
    publicPem: pair.publicKey.export({ type: "spki", format: "pem" }).toString(),
    privatePem: pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  };
}

export function writeAtomically(path: string, data: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** A signer for one key: header and claims in, compact JWS out. */
export type Signer = (claims: object, header?: object) => string;

/** signer returns a function that mints tokens with the key for `alg`. */
export function signer(material: KeyMaterial, alg: string = material.alg): Signer {
  let signBytes: (input: Buffer) => Buffer;
  if (material.secret !== undefined) {
    const secret = Buffer.from(material.secret, "utf8"); // the servers use the string's bytes
    signBytes = (input) => createHmac("sha256", secret).update(input).digest();
  } else {
    const key: KeyObject = createPrivateKey(material.privatePem ?? "");
    const hash = material.alg === "EdDSA" ? null : "sha256";
    const dsaEncoding = material.alg === "ES256" ? "ieee-p1363" : "der";
    signBytes = (input) => sign(hash, input, { key, dsaEncoding });
  }
  return (claims, header = {}) => {
    const input = `${b64({ alg, typ: "JWT", ...header })}.${b64(claims)}`;
    return `${input}.${signBytes(Buffer.from(input)).toString("base64url")}`;
  };
}

/** The claims of a valid benchmark token; `i` makes it distinct. */
export function validClaims(i: number, now = Math.floor(Date.now() / 1000)) {
  return {
    iss: issuer,
    aud: audience,
    sub: `bench-user-${i}`,
    scope: "notes:read",
    iat: now,
    exp: now + 86_400,
    jti: `${i.toString(36)}-${randomBytes(6).toString("base64url")}`,
  };
}
