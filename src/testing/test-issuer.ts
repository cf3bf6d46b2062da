import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
  SignJWT,
} from "jose";

/** The signature algorithms a test issuer can sign with. */
export type TestIssuerAlgorithm = "ES256" | "RS256" | "PS256" | "EdDSA";

/** TestIssuerOptions configure {@link createTestIssuer}. */
export interface TestIssuerOptions {
  /** The signing algorithm. Default `"ES256"`. */
  algorithm?: TestIssuerAlgorithm;
  /** The `aud` of the tokens it signs by default. Default `"test-api"`. */
  audience?: string;
}

/** SignOptions shape one token of {@link TestIssuer.sign}. */
export interface SignOptions {
  /** Lifetime in seconds from now; negative for an expired token. Default 300. */
  expiresIn?: number;
  /** Claims to leave out of the defaults, e.g. `["exp"]`. */
  omit?: readonly string[];
  /** Header members over `{ alg, kid, typ: "JWT" }`. */
  header?: Record<string, unknown>;
}

/** TestIssuerRequests counts the fetches a test issuer has answered. */
export interface TestIssuerRequests {
  /** Fetches of `/.well-known/openid-configuration`. */
  readonly discovery: number;
  /** Fetches of `/.well-known/jwks.json`. */
  readonly jwks: number;
}

/** TestIssuer is an OpenID provider in a box, for tests: it signs, serves its keys, and rotates. */
export interface TestIssuer {
  /** The issuer URL, also the `iss` of its tokens: pass it as `issuerUrl`. */
  readonly issuer: string;
  /** Its JWKS URL: pass it as `jwksUrl`. */
  readonly jwksUrl: string;
  /** The default `aud` of its tokens. */
  readonly audience: string;
  /** The public keys it serves right now. */
  readonly jwks: JSONWebKeySet;
  /** How many times its discovery document and JWKS were fetched. */
  readonly requests: TestIssuerRequests;
  /**
   * sign mints a token: `iss`, `aud`, `sub` ("test-user"), `iat`, `exp` and
   * `jti` by default, overridden by `claims`.
   */
  sign(claims?: JWTPayload & Record<string, unknown>, options?: SignOptions): Promise<string>;
  /** rotate makes a new signing key; the old one stays published unless `dropOld`. */
  rotate(options?: { dropOld?: boolean }): Promise<void>;
  /** close stops serving. */
  close(): Promise<void>;
}

interface SigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

/**
 * createTestIssuer starts an issuer on 127.0.0.1 (a free port) serving
 * `/.well-known/openid-configuration` and `/.well-known/jwks.json`, so tests
 * can exercise the real `issuerUrl`/`jwksUrl` paths without the internet.
 *
 * @example
 * ```ts
 * const issuer = await createTestIssuer();
 * const auth = createJwtAuth({ issuerUrl: issuer.issuer, audience: issuer.audience });
 * const token = await issuer.sign({ sub: "alice", scope: "notes:read" });
 * // ...
 * await issuer.close();
 * ```
 */
export async function createTestIssuer(options: TestIssuerOptions = {}): Promise<TestIssuer> {
  const algorithm = options.algorithm ?? "ES256";
  const audience = options.audience ?? "test-api";
  let keys: SigningKey[] = [await newKey(algorithm, 1)];
  const requests = { discovery: 0, jwks: 0 };
  let issuer = "";
  const server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    const send = (body: unknown) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (path === "/.well-known/openid-configuration") {
      requests.discovery++;
      send({
        issuer,
        jwks_uri: `${issuer}/.well-known/jwks.json`,
        id_token_signing_alg_values_supported: [algorithm],
      });
    } else if (path === "/.well-known/jwks.json") {
      requests.jwks++;
      send({ keys: keys.map((k) => k.publicJwk) });
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    jwksUrl: `${issuer}/.well-known/jwks.json`,
    audience,
    requests,
    get jwks() {
      return { keys: keys.map((k) => k.publicJwk) };
    },
    async sign(claims = {}, signOptions = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload: Record<string, unknown> = {
        iss: issuer,
        aud: audience,
        sub: "test-user",
        iat: now,
        exp: now + (signOptions.expiresIn ?? 300),
        jti: crypto.randomUUID(),
        ...claims,
      };
      for (const name of signOptions.omit ?? []) {
        delete payload[name];
      }
      const [current] = keys as [SigningKey];
      return new SignJWT(payload)
        .setProtectedHeader({ alg: algorithm, kid: current.kid, typ: "JWT", ...signOptions.header })
        .sign(current.privateKey);
    },
    async rotate({ dropOld = false } = {}) {
      const fresh = await newKey(algorithm, keys.length + 1);
      keys = dropOld ? [fresh] : [fresh, ...keys];
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function newKey(algorithm: TestIssuerAlgorithm, n: number): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(algorithm, { extractable: true });
  const kid = `test-key-${n}`;
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: algorithm, use: "sig" };
  return { kid, privateKey, publicJwk };
}
