// Tokens that can never verify are refused before any signature check and
// before any key fetch: counted with the testing kit's issuer (which counts
// its JWKS fetches) and a counter around WebCrypto's verify.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  AuthError,
  type AuthErrorCode,
  createVerifier,
  type VerifierOptions,
} from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { generateTestKey, mint } from "../helpers/fixtures.js";

const other = await generateTestKey("RS256");
const now = () => Math.floor(Date.now() / 1000);

/** A verifier of the test issuer's ES256 tokens, with its issuer and audience and `policy`. */
const verifierFor = (issuer: TestIssuer, policy: Partial<VerifierOptions> = {}) =>
  createVerifier({
    jwksUrl: issuer.jwksUrl,
    algorithms: ["ES256"],
    issuer: issuer.issuer,
    audience: issuer.audience,
    ...policy,
  });

describe("prechecks", () => {
  let issuer: TestIssuer;
  const subtle = globalThis.crypto.subtle;
  const verify = subtle.verify.bind(subtle);
  let cryptoCalls = 0;
  const counters = () => ({ fetches: issuer.requests.jwks, cryptoCalls });
  const verifier = () =>
    verifierFor(issuer, { typ: "JWT", maxLifetime: "1h", requiredClaims: ["sub"] });

  before(async () => {
    issuer = await createTestIssuer();
    subtle.verify = (...args: Parameters<SubtleCrypto["verify"]>) => {
      cryptoCalls++;
      return verify(...args);
    };
  });
  after(async () => {
    subtle.verify = verify;
    await issuer.close();
  });

  const cases: [string, () => Promise<string>, AuthErrorCode][] = [
    ["expired", () => issuer.sign({}, { expiresIn: -3600 }), "ERR_TOKEN_EXPIRED"],
    ["nbf in the future", () => issuer.sign({ nbf: now() + 600 }), "ERR_TOKEN_NOT_YET_VALID"],
    ["iat in the future", () => issuer.sign({ iat: now() + 600 }), "ERR_TOKEN_NOT_YET_VALID"],
    ["nbf a string", () => issuer.sign({ nbf: "now" as unknown as number }), "ERR_CLAIM_INVALID"],
    [
      "lifetime over maxLifetime",
      () => issuer.sign({ iat: now(), exp: now() + 7200 }),
      "ERR_LIFETIME_TOO_LONG",
    ],
    ["no sub (requiredClaims)", () => issuer.sign({}, { omit: ["sub"] }), "ERR_CLAIM_MISSING"],
    [
      "typ at+jwt, not JWT",
      () => issuer.sign({}, { header: { typ: "at+jwt" } }),
      "ERR_TYPE_INVALID",
    ],
    ["no exp", () => issuer.sign({}, { omit: ["exp"] }), "ERR_CLAIM_MISSING"],
    [
      "exp a string",
      () => issuer.sign({ exp: "tomorrow" as unknown as number }),
      "ERR_CLAIM_INVALID",
    ],
    ["wrong issuer", () => issuer.sign({ iss: "https://evil.test/" }), "ERR_ISSUER_INVALID"],
    ["wrong audience", () => issuer.sign({ aud: ["a", "b"] }), "ERR_AUDIENCE_INVALID"],
    [
      "algorithm not allowed",
      () => mint(other, { claims: { iss: issuer.issuer, aud: issuer.audience } }),
      "ERR_ALGORITHM_NOT_ALLOWED",
    ],
    [
      "payload not JSON",
      async () => `${(await issuer.sign()).split(".")[0]}.bm9wZQ.c2ln`,
      "ERR_TOKEN_MALFORMED",
    ],
  ];

  for (const [name, token, code] of cases) {
    test(`${name}: refused with ${code}, no crypto, no fetch`, async () => {
      const t = await token();
      const before = counters();
      await assert.rejects(
        verifier().verify(t),
        (err: unknown) => err instanceof AuthError && err.code === code,
      );
      assert.deepEqual(counters(), before);
    });
  }

  test("a valid token costs one fetch and one signature check, which proves the counters", async () => {
    const before = counters();
    assert.equal(
      (await verifier().verify(await issuer.sign({ exp: now() + 60 }))).iss,
      issuer.issuer,
    );
    assert.deepEqual(counters(), {
      fetches: before.fetches + 1,
      cryptoCalls: before.cryptoCalls + 1,
    });
  });
});
