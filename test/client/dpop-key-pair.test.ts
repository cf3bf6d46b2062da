import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CompactSign, compactVerify, exportJWK } from "jose";
import { createDpopKeyPair, type DpopAlgorithm } from "../../src/client/index.js";

const expected: Record<DpopAlgorithm, { name: string; extra: Record<string, unknown> }> = {
  ES256: { name: "ECDSA", extra: { namedCurve: "P-256" } },
  EdDSA: { name: "Ed25519", extra: {} },
  PS256: { name: "RSA-PSS", extra: { modulusLength: 2048 } },
  RS256: { name: "RSASSA-PKCS1-v1_5", extra: { modulusLength: 2048 } },
};

describe("createDpopKeyPair", () => {
  for (const [alg, { name, extra }] of Object.entries(expected) as [
    DpopAlgorithm,
    (typeof expected)[DpopAlgorithm],
  ][]) {
    test(`${alg}: the private key signs and cannot be exported; the public key can`, async () => {
      const { privateKey, publicKey } = await createDpopKeyPair(alg);
      assert.equal(privateKey.type, "private");
      assert.equal(privateKey.extractable, false);
      assert.deepEqual(privateKey.usages, ["sign"]);
      assert.equal(privateKey.algorithm.name, name);
      for (const [member, value] of Object.entries(extra)) {
        assert.equal((privateKey.algorithm as unknown as Record<string, unknown>)[member], value);
      }
      for (const format of ["jwk", "pkcs8"] as const) {
        await assert.rejects(crypto.subtle.exportKey(format, privateKey), {
          name: "InvalidAccessError",
        });
      }
      assert.equal(publicKey.type, "public");
      assert.equal(publicKey.extractable, true);
      const jwk = await exportJWK(publicKey);
      assert.equal(jwk.d, undefined);
      // The pair is a working pair: what the private key signs, the public key verifies.
      const jws = await new CompactSign(new TextEncoder().encode("proof"))
        .setProtectedHeader({ alg })
        .sign(privateKey);
      const { payload } = await compactVerify(jws, publicKey);
      assert.equal(new TextDecoder().decode(payload), "proof");
    });
  }

  test("ES256 by default", async () => {
    const { privateKey } = await createDpopKeyPair();
    assert.equal(privateKey.algorithm.name, "ECDSA");
  });

  test("an algorithm it cannot make is a TypeError", async () => {
    for (const alg of ["HS256", "none", "ES384", ""]) {
      await assert.rejects(createDpopKeyPair(alg as DpopAlgorithm), {
        name: "TypeError",
        message: /alg must be one of ES256, EdDSA, PS256, RS256/,
      });
    }
  });
});
