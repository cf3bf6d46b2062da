// Tokens that can never verify are refused before any signature check and
// before any key fetch: counted with a JWKS server on 127.0.0.1 and a counter
// around WebCrypto's verify.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { AuthError, type AuthErrorCode, createVerifier } from "../../src/index.js";
import { audience, generateTestKey, issuer, mint } from "../helpers/tokens.js";

const key = await generateTestKey("ES256");
const other = await generateTestKey("RS256");
const now = () => Math.floor(Date.now() / 1000);

describe("prechecks", () => {
  let server: Server;
  let fetches = 0;
  let jwksUrl = "";
  const subtle = globalThis.crypto.subtle;
  const verify = subtle.verify.bind(subtle);
  let cryptoCalls = 0;

  before(async () => {
    server = createServer((_req, res) => {
      fetches++;
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ keys: [key.publicJwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    subtle.verify = (...args: Parameters<SubtleCrypto["verify"]>) => {
      cryptoCalls++;
      return verify(...args);
    };
  });
  after(async () => {
    subtle.verify = verify;
    await new Promise((resolve) => server.close(resolve));
  });

  const cases: [string, () => Promise<string>, AuthErrorCode][] = [
    ["expired", () => mint(key, { claims: { exp: now() - 3600 } }), "ERR_TOKEN_EXPIRED"],
    ["no exp", () => mint(key, { omit: ["exp"] }), "ERR_CLAIM_MISSING"],
    [
      "exp a string",
      () => mint(key, { claims: { exp: "tomorrow" as unknown as number } }),
      "ERR_CLAIM_INVALID",
    ],
    [
      "wrong issuer",
      () => mint(key, { claims: { iss: "https://evil.test/" } }),
      "ERR_ISSUER_INVALID",
    ],
    ["wrong audience", () => mint(key, { claims: { aud: ["a", "b"] } }), "ERR_AUDIENCE_INVALID"],
    ["algorithm not allowed", () => mint(other), "ERR_ALGORITHM_NOT_ALLOWED"],
    [
      "payload not JSON",
      async () => `${(await mint(key)).split(".")[0]}.bm9wZQ.c2ln`,
      "ERR_TOKEN_MALFORMED",
    ],
  ];

  for (const [name, token, code] of cases) {
    test(`${name}: refused with ${code}, no crypto, no fetch`, async () => {
      const verifier = createVerifier({ jwksUrl, algorithms: ["ES256"], issuer, audience });
      const t = await token();
      const before = { fetches, cryptoCalls };
      await assert.rejects(
        verifier.verify(t),
        (err: unknown) => err instanceof AuthError && err.code === code,
      );
      assert.deepEqual({ fetches, cryptoCalls }, before);
    });
  }

  test("a valid token costs one fetch and one signature check, which proves the counters", async () => {
    const verifier = createVerifier({ jwksUrl, algorithms: ["ES256"], issuer, audience });
    const before = { fetches, cryptoCalls };
    assert.equal((await verifier.verify(await mint(key))).iss, issuer);
    assert.deepEqual(
      { fetches, cryptoCalls },
      { fetches: before.fetches + 1, cryptoCalls: before.cryptoCalls + 1 },
    );
  });
});
