// A DPoP proof's signature, checked with WebCrypto under the key its header
// carries: every algorithm a proof may use, and the keys that do not fit one.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { describe, test } from "node:test";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { importProofKey } from "../../src/core/proof-signature.js";

async function signed(alg: string, options: { crv?: string } = {}) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { ...options, extractable: true });
  const jws = await new SignJWT({ jti: "j" })
    .setProtectedHeader({ alg, typ: "dpop+jwt" })
    .sign(privateKey);
  return { jws, jwk: await exportJWK(publicKey) };
}

/** `jws` with the first character of its signature changed. */
function tampered(jws: string): string {
  const end = jws.lastIndexOf(".") + 1;
  const first = jws.charAt(end) === "A" ? "B" : "A";
  return `${jws.slice(0, end)}${first}${jws.slice(end + 1)}`;
}

describe("importProofKey", () => {
  for (const alg of ["ES256", "ES384", "ES512", "EdDSA", "Ed25519", "PS256", "RS256"]) {
    test(`${alg}: a signature verifies; a changed signature or payload does not`, async () => {
      const { jws, jwk } = await signed(alg);
      const verifies = await importProofKey(jwk, alg);
      assert.equal(await verifies(jws), true);
      assert.equal(await verifies(tampered(jws)), false);
      const [header, , signature] = jws.split(".");
      const otherPayload = Buffer.from('{"jti":"k"}').toString("base64url");
      assert.equal(await verifies(`${header}.${otherPayload}.${signature}`), false);
    });
  }

  test("a signature by another key of the same kind does not verify", async () => {
    const { jws } = await signed("ES256");
    const { jwk } = await signed("ES256");
    assert.equal(await (await importProofKey(jwk, "ES256"))(jws), false);
  });

  const unfit: [string, () => Promise<JWK>, string][] = [
    ["a P-384 key under ES256", async () => (await signed("ES384")).jwk, "ES256"],
    ["a P-256 key under ES512", async () => (await signed("ES256")).jwk, "ES512"],
    ["an EC key under RS256", async () => (await signed("ES256")).jwk, "RS256"],
    ["an Ed25519 key under ES256", async () => (await signed("EdDSA")).jwk, "ES256"],
    ["an RSA key under EdDSA", async () => (await signed("RS256")).jwk, "EdDSA"],
    [
      "a 1024-bit RSA key under RS256",
      () => exportJWK(generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey),
      "RS256",
    ],
    ["any key under HS256", async () => (await signed("ES256")).jwk, "HS256"],
    ["any key under none", async () => (await signed("ES256")).jwk, "none"],
  ];
  for (const [name, jwkOf, alg] of unfit) {
    test(`${name} is refused`, async () => {
      await assert.rejects(importProofKey(await jwkOf(), alg));
    });
  }
});
