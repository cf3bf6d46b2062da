// The demo with DPoP (RFC 9449): `POST /demo/token` with a proof mints a
// token bound to the proof's key, which then works on Connect, gRPC and
// gRPC-Web through dpopAuth, and not as a bearer token.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  generateSecret,
  type JWK,
  jwtVerify,
  SignJWT,
} from "jose";
import { readConfig } from "../../example/config.js";
import { corsAllowedHeaders, corsExposedHeaders } from "../../example/cors.js";
import { type Demo, demoAudience, startDemo } from "../../example/demo.js";
import { selfSignedCertificate } from "../../example/x509.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import {
  bearerAuth,
  createDpopKeyPair,
  type DpopKeyPair,
  dpopAuth,
} from "../../src/client/index.js";
import { demoTransports } from "../helpers/demo-transports.js";
import {
  type DpopKey,
  dpopHeaders,
  generateDpopKey,
  makeProof,
  type ProofOptions,
} from "../helpers/dpop.js";
import { b64url, compactJws, tamperSignature } from "../helpers/fixtures.js";

const algs = 'algs="ES256 EdDSA PS256 RS256"';

/** A token-request proof (no `ath`: no access token yet) for `htu`. */
function tokenProof(key: DpopKey, htu: string, options: Partial<ProofOptions> = {}) {
  return makeProof(key, { token: "", htu, ...options, omit: ["ath", ...(options.omit ?? [])] });
}

/** A token-request proof signed with a WebCrypto key pair, as a browser makes one. */
async function tokenProofWith(keyPair: DpopKeyPair, htu: string): Promise<string> {
  const { kty, crv, x, y } = await exportJWK(keyPair.publicKey);
  const jwk = { kty, crv, x, y } as JWK;
  return new SignJWT({ jti: randomUUID(), htm: "POST", htu })
    .setProtectedHeader({ typ: "dpop+jwt", alg: "ES256", jwk })
    .setIssuedAt()
    .sign(keyPair.privateKey);
}

interface TokenAnswer {
  readonly status: number;
  readonly text: string;
  readonly body: Record<string, unknown>;
}

/** POST /demo/token with these headers (e.g. a DPoP proof) and body. */
async function requestToken(
  url: string,
  headers: HeadersInit = {},
  body: unknown = { sub: "dee", scope: "notes:read" },
): Promise<TokenAnswer> {
  const request = new Headers(headers);
  request.set("content-type", "application/json");
  const res = await fetch(`${url}/demo/token`, {
    method: "POST",
    headers: request,
    body: JSON.stringify(body),
  });
  assert.equal(res.headers.get("cache-control"), "no-store");
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as Record<string, unknown> };
}

/** The token of a successful answer. */
function tokenOf(answer: TokenAnswer): string {
  assert.equal(answer.status, 200, answer.text);
  assert.equal(typeof answer.body.token, "string");
  return answer.body.token as string;
}

describe("demo: POST /demo/token with a DPoP proof", () => {
  let demo: Demo;
  let tokenUrl: string;
  before(async () => {
    demo = await startDemo({ port: 0 });
    tokenUrl = `${demo.url}/demo/token`;
  });
  after(() => demo?.close());

  it("answers a token bound to the proof's key: cnf.jkt is its thumbprint, token_type DPoP", async () => {
    const key = await generateDpopKey();
    const answer = await requestToken(demo.url, { dpop: await tokenProof(key, tokenUrl) });
    const token = tokenOf(answer);
    assert.equal(answer.body.token_type, "DPoP");
    assert.equal(answer.body.expires_in, 300);
    const jwks = await (await fetch(`${demo.url}/.well-known/jwks.json`)).json();
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), {
      algorithms: ["ES256"],
      issuer: demo.url,
      audience: demoAudience,
    });
    assert.equal(payload.sub, "dee");
    assert.deepEqual(payload.cnf, { jkt: key.thumbprint });
    assert.equal(key.thumbprint, await calculateJwkThumbprint(key.publicJwk, "sha256"));
  });

  it("EdDSA and RSA keys, and the localhost origin, are accepted too", async () => {
    for (const [alg, origin] of [
      ["EdDSA", demo.url],
      ["PS256", `http://localhost:${demo.port}`],
      ["RS256", `http://LOCALHOST:${demo.port}`],
    ] as const) {
      const key = await generateDpopKey(alg);
      const answer = await requestToken(demo.url, {
        dpop: await tokenProof(key, `${origin}/demo/token`),
      });
      const token = tokenOf(answer);
      assert.equal(answer.body.token_type, "DPoP", alg);
      const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString());
      assert.deepEqual(claims.cnf, { jkt: key.thumbprint }, alg);
    }
  });

  it("without a DPoP header: a Bearer token without cnf, as before", async () => {
    const answer = await requestToken(demo.url);
    const token = tokenOf(answer);
    assert.equal(answer.body.token_type, "Bearer");
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString());
    assert.equal(claims.cnf, undefined);
  });

  it("the discovery document names the proof algorithms", async () => {
    const doc = (await (
      await fetch(`${demo.url}/.well-known/openid-configuration`)
    ).json()) as Record<string, unknown>;
    assert.deepEqual(doc.dpop_signing_alg_values_supported, ["ES256", "EdDSA", "PS256", "RS256"]);
  });

  it("a replayed proof is refused: 400 invalid_dpop_proof", async () => {
    const key = await generateDpopKey();
    const proof = await tokenProof(key, tokenUrl);
    tokenOf(await requestToken(demo.url, { dpop: proof }));
    const again = await requestToken(demo.url, { dpop: proof });
    assert.equal(again.status, 400);
    assert.deepEqual(again.body, {
      error: "invalid_dpop_proof",
      error_description: "the DPoP proof was used before; make a new one per request",
    });
  });

  const now = () => Math.floor(Date.now() / 1000);
  type MakeProof = (key: DpopKey, htu: string) => Promise<string | string[]>;
  /** Bad proofs, each made from a fresh key and the token URL, and what the refusal names. */
  const badProofs: Record<string, [make: MakeProof, names: string]> = {
    "not a JWS": [async () => "not-a-proof", "one proof"],
    "two proofs": [
      async (key, htu) => [await tokenProof(key, htu), await tokenProof(key, htu)],
      "one proof",
    ],
    "typ JWT": [(key, htu) => tokenProof(key, htu, { header: { typ: "JWT" } }), "typ"],
    "alg none": [
      async (key, htu) =>
        compactJws(
          { typ: "dpop+jwt", alg: "none", jwk: key.publicJwk },
          { jti: randomUUID(), htm: "POST", htu, iat: now() },
          b64url("sig"),
        ),
      "alg",
    ],
    "alg HS256 with a symmetric jwk": [
      async (_key, htu) => {
        const secret = await generateSecret("HS256", { extractable: true });
        return new SignJWT({ jti: randomUUID(), htm: "POST", htu })
          .setProtectedHeader({ typ: "dpop+jwt", alg: "HS256", jwk: await exportJWK(secret) })
          .setIssuedAt()
          .sign(secret);
      },
      "alg",
    ],
    "a private key in jwk": [
      async (key, htu) =>
        tokenProof(key, htu, { header: { jwk: await exportJWK(key.privateKey) } }),
      "jwk",
    ],
    "the jwk of another key": [
      async (key, htu) =>
        tokenProof(key, htu, { header: { jwk: (await generateDpopKey()).publicJwk } }),
      "signature",
    ],
    "a tampered signature": [
      async (key, htu) => tamperSignature(await tokenProof(key, htu)),
      "signature",
    ],
    "a tampered payload": [
      async (key, htu) => {
        const [header, , signature] = (await tokenProof(key, htu)).split(".");
        const payload = b64url({ jti: randomUUID(), htm: "POST", htu, iat: now() });
        return `${header}.${payload}.${signature}`;
      },
      "signature",
    ],
    "htm GET": [(key, htu) => tokenProof(key, htu, { htm: "GET" }), "htm"],
    "htu of another path": [
      (key, htu) => tokenProof(key, htu.replace("/demo/token", "/demo/x")),
      "htu",
    ],
    "htu of another port": [(key, htu) => tokenProof(key, htu.replace(/:(\d+)\//, ":1/")), "htu"],
    "htu with https": [(key, htu) => tokenProof(key, htu.replace("http:", "https:")), "htu"],
    "htu with a query": [(key, htu) => tokenProof(key, `${htu}?x=1`), "htu"],
    "htu of another host": [
      (key, htu) => tokenProof(key, htu.replace("127.0.0.1", "demo.example.com")),
      "htu",
    ],
    "iat 10 minutes old": [
      (key, htu) => tokenProof(key, htu, { claims: { iat: now() - 600 } }),
      "too old",
    ],
    "iat 10 minutes ahead": [
      (key, htu) => tokenProof(key, htu, { claims: { iat: now() + 600 } }),
      "in the future",
    ],
    "no jti": [(key, htu) => tokenProof(key, htu, { omit: ["jti"] }), "jti"],
    "no htu": [(key, htu) => tokenProof(key, htu, { omit: ["htu"] }), "htu"],
    "no iat": [(key, htu) => tokenProof(key, htu, { omit: ["iat"] }), "iat"],
    "over 8 KiB": [
      (key, htu) => tokenProof(key, htu, { claims: { pad: "x".repeat(9000) } }),
      "longer than",
    ],
  };
  for (const [name, [make, names]] of Object.entries(badProofs)) {
    it(`refuses ${name}: 400 invalid_dpop_proof, a fixed description, no input echoed`, async () => {
      const proof = await make(await generateDpopKey(), tokenUrl);
      const headers = new Headers();
      for (const value of Array.isArray(proof) ? proof : [proof]) {
        headers.append("dpop", value);
      }
      const answer = await requestToken(demo.url, headers);
      assert.equal(answer.status, 400, answer.text);
      assert.deepEqual(Object.keys(answer.body).sort(), ["error", "error_description"]);
      assert.equal(answer.body.error, "invalid_dpop_proof");
      const description = String(answer.body.error_description);
      assert.match(description, /^the DPoP (header|proof)/);
      assert.ok(description.includes(names), `${description}: does not name ${names}`);
      for (const part of [proof].flat().flatMap((p) => p.split("."))) {
        if (part.length > 8) {
          assert.ok(!answer.text.includes(part), "the answer repeats the proof");
        }
      }
    });
  }

  it("a bad body is refused before the proof is used: the proof still works after", async () => {
    const key = await generateDpopKey();
    const proof = await tokenProof(key, tokenUrl);
    assert.equal((await requestToken(demo.url, { dpop: proof }, { scopes: "x" })).status, 400);
    assert.equal((await requestToken(demo.url, { dpop: proof })).body.token_type, "DPoP");
  });
});

const transports = demoTransports;

/** Asserts that a call was refused with the failure code and this challenge. */
function refusedWith(challenge: string) {
  return (err: unknown) => {
    const error = ConnectError.from(err);
    assert.equal(error.code, Code.PermissionDenied);
    assert.equal(error.metadata.get("www-authenticate"), challenge);
    return true;
  };
}

describe("demo: a DPoP-bound token on every protocol", () => {
  let demo: Demo;
  let keyPair: DpopKeyPair;
  let token: string;
  before(async () => {
    demo = await startDemo({ port: 0 });
    // A non-extractable key, as in a browser; the token from the demo's endpoint.
    keyPair = await createDpopKeyPair();
    const proof = await tokenProofWith(keyPair, `${demo.url}/demo/token`);
    const answer = await requestToken(
      demo.url,
      { dpop: proof },
      { sub: "erin", scope: "notes:read notes:write chat" },
    );
    token = tokenOf(answer);
  });
  after(() => demo?.close());

  for (const [name, transport] of Object.entries(transports)) {
    it(`${name}: unary and server streaming through dpopAuth`, async () => {
      const client = createClient(DemoService, transport(demo.url, [dpopAuth(token, { keyPair })]));
      assert.equal((await client.whoAmI({})).subject, "erin");
      const owners = [];
      for await (const res of client.listNotes({ limit: 2 })) {
        owners.push(res.note?.owner);
      }
      assert.deepEqual(owners, ["erin", "erin"]);
    });

    it(`${name}: refused as Bearer, and with another key's proofs`, async () => {
      const asBearer = createClient(DemoService, transport(demo.url, [bearerAuth(token)]));
      await assert.rejects(asBearer.whoAmI({}), refusedWith(`DPoP error="invalid_token", ${algs}`));
      const other = await createDpopKeyPair();
      const otherKey = createClient(
        DemoService,
        transport(demo.url, [dpopAuth(token, { keyPair: other })]),
      );
      await assert.rejects(otherKey.whoAmI({}), refusedWith(`DPoP error="invalid_token", ${algs}`));
    });
  }

  it("grpc over HTTP/2: client and bidi streams through dpopAuth", async () => {
    const client = createClient(
      DemoService,
      transports["grpc over HTTP/2 (h2c)"](demo.url, [dpopAuth(token, { keyPair })]),
    );
    async function* texts() {
      yield { text: "one" };
      yield { text: "two" };
    }
    assert.equal((await client.uploadNotes(texts())).owner, "erin");
    const echoes = [];
    for await (const res of client.chat(texts())) {
      echoes.push(`${res.subject}: ${res.text}`);
    }
    assert.deepEqual(echoes, ["erin: one", "erin: two"]);
  });

  it("a proof sent twice over the Connect protocol: the second call is refused", async () => {
    const key = await generateDpopKey();
    const bound = await demo.mintToken({ sub: "frank" }, { jkt: key.thumbprint });
    const proof = await makeProof(key, {
      token: bound,
      htu: `${demo.url}/demo.v1.DemoService/WhoAmI`,
    });
    const send = () =>
      fetch(`${demo.url}/demo.v1.DemoService/WhoAmI`, {
        method: "POST",
        headers: {
          ...dpopHeaders(bound, proof),
          "content-type": "application/json",
          "connect-protocol-version": "1",
        },
        body: "{}",
      });
    const first = await send();
    assert.equal(first.status, 200);
    assert.equal(((await first.json()) as { subject: string }).subject, "frank");
    const second = await send();
    assert.equal(second.status, 403);
    assert.equal(
      second.headers.get("www-authenticate"),
      `DPoP error="invalid_dpop_proof", ${algs}`,
    );
  });

  it("CORS: a preflight may ask for the DPoP header; DPoP-Nonce is exposed", async () => {
    const preflight = await fetch(`${demo.url}/demo.v1.DemoService/WhoAmI`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,dpop",
      },
    });
    assert.equal(preflight.status, 204);
    const allowed = (preflight.headers.get("access-control-allow-headers") ?? "").split(", ");
    assert.ok(allowed.includes("DPoP"), allowed.join());
    assert.ok(corsAllowedHeaders.includes("DPoP"));
    const res = await fetch(`${demo.url}/demo.v1.DemoService/WhoAmI`, {
      method: "POST",
      headers: { origin: "https://app.example", "content-type": "application/json" },
      body: "{}",
    });
    const exposed = (res.headers.get("access-control-expose-headers") ?? "").split(", ");
    for (const header of ["WWW-Authenticate", "DPoP-Nonce", "Grpc-Status", "Grpc-Message"]) {
      assert.ok(exposed.includes(header), header);
    }
    assert.deepEqual(exposed, [...corsExposedHeaders]);
  });
});

describe("demo: the origins DPoP proofs name (PUBLIC_ORIGIN)", () => {
  it("readConfig reads PUBLIC_ORIGIN: comma-separated origins, unset by default", () => {
    assert.equal(readConfig({}).publicOrigins, undefined);
    assert.equal(readConfig({ PUBLIC_ORIGIN: " " }).publicOrigins, undefined);
    assert.deepEqual(
      readConfig({ PUBLIC_ORIGIN: "https://demo.example.com, http://localhost:3000" })
        .publicOrigins,
      ["https://demo.example.com", "http://localhost:3000"],
    );
    for (const bad of ["https://demo.example.com/", "demo.example.com", "ftp://demo.example.com"]) {
      assert.throws(() => readConfig({ PUBLIC_ORIGIN: bad }), {
        name: "TypeError",
        message: /^PUBLIC_ORIGIN: .* is not an origin; write it like https:\/\/demo\.example\.com$/,
      });
    }
  });

  it("by default: the listening address, as 127.0.0.1 and localhost", async () => {
    const demo = await startDemo({ port: 0 });
    try {
      assert.deepEqual(demo.publicOrigins, [demo.url, `http://localhost:${demo.port}`]);
    } finally {
      await demo.close();
    }
  });

  it("with PUBLIC_ORIGIN: proofs name that origin, not the listening address", async () => {
    const publicOrigin = "https://demo.example.com";
    const demo = await startDemo({ port: 0, publicOrigins: [publicOrigin] });
    try {
      assert.deepEqual(demo.publicOrigins, [publicOrigin]);
      const key = await generateDpopKey();
      const local = await requestToken(demo.url, {
        dpop: await tokenProof(key, `${demo.url}/demo/token`),
      });
      assert.equal(local.status, 400);
      const answer = await requestToken(demo.url, {
        dpop: await tokenProof(key, `${publicOrigin}/demo/token`),
      });
      const token = tokenOf(answer);
      const call = async (htu: string) => {
        const proof = await makeProof(key, { token, htu });
        return fetch(`${demo.url}/demo.v1.DemoService/WhoAmI`, {
          method: "POST",
          headers: { ...dpopHeaders(token, proof), "content-type": "application/json" },
          body: "{}",
        });
      };
      assert.equal((await call(`${publicOrigin}/demo.v1.DemoService/WhoAmI`)).status, 200);
      const refused = await call(`${demo.url}/demo.v1.DemoService/WhoAmI`);
      assert.equal(refused.status, 403);
      assert.equal(
        refused.headers.get("www-authenticate"),
        `DPoP error="invalid_dpop_proof", ${algs}`,
      );
    } finally {
      await demo.close();
    }
  });

  it("over TLS: the https origins, and a bound token works over gRPC (h2)", async () => {
    const credentials = selfSignedCertificate();
    const demo = await startDemo({ port: 0, tls: credentials });
    try {
      assert.deepEqual(demo.publicOrigins, [demo.url, `https://localhost:${demo.port}`]);
      const keyPair = await createDpopKeyPair();
      const { kty, crv, x, y } = await exportJWK(keyPair.publicKey);
      const jkt = await calculateJwkThumbprint({ kty, crv, x, y } as never);
      const token = await demo.mintToken({ sub: "tls-dpop" }, { jkt });
      const transport: Transport = createGrpcTransport({
        baseUrl: demo.url,
        nodeOptions: { ca: credentials.cert },
        interceptors: [dpopAuth(token, { keyPair })],
      });
      assert.equal((await createClient(DemoService, transport).whoAmI({})).subject, "tls-dpop");
    } finally {
      await demo.close();
    }
  });
});
