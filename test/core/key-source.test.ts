import * as assert from "node:assert/strict";
import { createSecretKey, generateKeyPairSync, type KeyObject, X509Certificate } from "node:crypto";
import { describe, test } from "node:test";
import { exportJWK, generateKeyPair, importSPKI } from "jose";
import { createVerifier, type VerifierOptions } from "../../src/index.js";
import {
  type AsymmetricAlg,
  assertRefused,
  audience,
  certificateFor,
  issuer,
  keyPair,
  mint,
  secret64,
  secretClaims,
  tamperSignature,
} from "../helpers/fixtures.js";

const secret32 = secret64.slice(0, 32);

/** Options as a JavaScript caller could pass them, type errors included. */
function optionError(options: unknown, message: RegExp): void {
  assert.throws(() => createVerifier(options as VerifierOptions), { name: "TypeError", message });
}

function rsaPublicKeySync(modulusLength: number): KeyObject {
  return generateKeyPairSync("rsa", { modulusLength }).publicKey;
}

describe("createVerifier refuses option mistakes with a TypeError", () => {
  test("no key source", () => {
    optionError({}, /no key source; pass one of `secret`, `publicKey`/);
    optionError({ issuer, audience, algorithms: ["ES256"] }, /no key source/);
  });

  test("two or three key sources", async () => {
    const { publicPem, publicJwk } = await keyPair("ES256");
    optionError(
      { secret: secret32, publicKey: publicPem },
      /pass only one of .*not secret and publicKey/,
    );
    optionError(
      { secret: secret32, publicKey: publicPem, jwks: { keys: [publicJwk] } },
      /pass only one of .*not secret and publicKey and jwks/,
    );
  });

  test("a secret shorter than 32 bytes", () => {
    optionError({ secret: "a".repeat(31) }, /secret has 31 bytes; .*at least 32/);
    optionError({ secret: new Uint8Array(16) }, /secret has 16 bytes; .*at least 32/);
    optionError({ secret: "" }, /secret is empty; is the variable it is read from set\?/);
  });

  test("an unknown option names the closest known one", () => {
    optionError(
      { secret: secret32, audiance: "api" },
      /unknown option `audiance`; did you mean `audience`\?/,
    );
  });

  test("a secret is measured in UTF-8 bytes, not characters", () => {
    optionError({ secret: "é".repeat(15) }, /secret has 30 bytes/);
    assert.deepEqual(createVerifier({ secret: "é".repeat(16) }).maxTokenSize, 8192);
  });

  test("a secret that is neither a string nor bytes", () => {
    optionError({ secret: 1234 }, /secret must be a string or a Uint8Array/);
  });

  test("an HS algorithm whose hash is longer than the secret", () => {
    optionError({ secret: secret32, algorithms: ["HS512"] }, /HS512 needs a secret of at least 64/);
    optionError(
      { secret: secret64.slice(0, 47), algorithms: ["HS256", "HS384"] },
      /HS384 needs a secret of at least 48/,
    );
  });

  test("an asymmetric algorithm with a secret", () => {
    optionError({ secret: secret32, algorithms: ["RS256"] }, /RS256 needs a public key/);
    optionError({ secret: secret64, algorithms: ["HS256", "ES256"] }, /ES256 needs a public key/);
  });

  test("`none` or an unknown algorithm", () => {
    optionError({ secret: secret32, algorithms: ["none"] }, /"none" is not supported/);
    optionError({ secret: secret32, algorithms: ["HS256", "none"] }, /"none" is not supported/);
    optionError({ secret: secret32, algorithms: ["hs256"] }, /"hs256" is not supported/);
    optionError({ secret: secret32, algorithms: ["HS1"] }, /"HS1" is not supported; use some of/);
  });

  test("an empty or non-array algorithms", () => {
    optionError({ secret: secret32, algorithms: [] }, /algorithms must be a non-empty array/);
    optionError({ secret: secret32, algorithms: "HS256" }, /algorithms must be a non-empty array/);
  });

  test("a publicKey PEM that is a private key", () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    const pems = [
      privateKey.export({ type: "pkcs8", format: "pem" }),
      privateKey.export({ type: "sec1", format: "pem" }),
      rsa.export({ type: "pkcs1", format: "pem" }),
    ];
    for (const pem of pems) {
      assert.match(String(pem), /PRIVATE KEY-----/);
      optionError(
        { publicKey: pem, algorithms: ["ES256"] },
        /publicKey is a private key; pass the public key/,
      );
    }
  });

  test("a publicKey JWK with a private member `d`", async () => {
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    const jwk = await exportJWK(privateKey);
    assert.equal(typeof jwk.d, "string");
    optionError(
      { publicKey: jwk, algorithms: ["ES256"] },
      /holds a private key; pass only the public/,
    );
  });

  test("a symmetric JWK as publicKey", () => {
    const jwk = { kty: "oct", k: Buffer.from(secret64).toString("base64url") };
    optionError(
      { publicKey: jwk, algorithms: ["HS256"] },
      /is a symmetric JWK; pass its bytes as `secret`/,
    );
    optionError(
      { jwks: { keys: [jwk] }, algorithms: ["HS256"] },
      /jwks\.keys\[0\] is a symmetric JWK/,
    );
  });

  test("a KeyObject that is private or secret", () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    optionError(
      { publicKey: privateKey, algorithms: ["ES256"] },
      /is a private key; pass the public key/,
    );
    const secretKey = createSecretKey(Buffer.from(secret64));
    optionError(
      { publicKey: secretKey, algorithms: ["HS256"] },
      /is a secret key; pass the public key/,
    );
  });

  test("a private CryptoKey", async () => {
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    optionError(
      { publicKey: privateKey, algorithms: ["ES256"] },
      /is a private key; pass the public key/,
    );
  });

  test("an RSA key of 1024 bits, in every form", async () => {
    const key = rsaPublicKeySync(1024);
    const pem = key.export({ type: "spki", format: "pem" });
    const jwk = key.export({ format: "jwk" });
    const message = /1024-bit RSA key; RSA keys need at least 2048 bits/;
    optionError({ publicKey: key, algorithms: ["RS256"] }, message);
    optionError({ publicKey: pem, algorithms: ["RS256"] }, message);
    optionError({ publicKey: jwk, algorithms: ["RS256"] }, message);
    const good = (await keyPair("RS256")).publicJwk;
    optionError(
      { jwks: { keys: [good, jwk] }, algorithms: ["RS256"] },
      /jwks\.keys\[1\] is a 1024-bit RSA key/,
    );
  });

  test("a key type no JWS algorithm uses", () => {
    const { publicKey } = generateKeyPairSync("x25519");
    optionError({ publicKey, algorithms: ["EdDSA"] }, /key type x25519 is not supported/);
  });

  test("something that is no key at all", () => {
    optionError(
      { publicKey: "not a pem", algorithms: ["ES256"] },
      /publicKey is not a valid public key/,
    );
    optionError(
      { publicKey: new Uint8Array(32), algorithms: ["ES256"] },
      /publicKey must be a PEM string, a JWK, a KeyObject or a CryptoKey/,
    );
    optionError(
      { publicKey: { kty: "EC", crv: "P-256", x: "AA", y: "AA" }, algorithms: ["ES256"] },
      /publicKey is not a valid public key/,
    );
  });

  test("a publicKey without algorithms, unless its JWK names alg", async () => {
    const { publicPem, publicJwk, publicKeyObject } = await keyPair("ES256");
    const message = /set `algorithms` \(e\.g\. \["ES256"\]\); it is required for public keys/;
    optionError({ publicKey: publicPem }, message);
    optionError({ publicKey: publicKeyObject }, message);
    optionError({ publicKey: publicJwk }, message);
    optionError({ jwks: { keys: [publicJwk] } }, /jwks: set `algorithms`/);
    const named = { ...publicJwk, alg: "ES256" };
    assert.equal(createVerifier({ publicKey: named }).maxTokenSize, 8192);
    assert.equal(createVerifier({ jwks: { keys: [named] } }).maxTokenSize, 8192);
  });

  test("a JWK whose alg does not fit its key", async () => {
    const { publicJwk } = await keyPair("ES256");
    optionError({ publicKey: { ...publicJwk, alg: "RS256" } }, /the JWK's alg RS256 does not fit/);
  });

  test("algorithms that do not fit the key", async () => {
    const rsa = await keyPair("RS256");
    const p256 = await keyPair("ES256");
    optionError(
      { publicKey: rsa.publicPem, algorithms: ["ES256"] },
      /algorithm ES256 cannot be verified with the configured key\(s\); they fit RS256/,
    );
    optionError(
      { publicKey: p256.publicPem, algorithms: ["ES384"] },
      /algorithm ES384 cannot be verified .*they fit ES256/,
    );
    optionError(
      { publicKey: p256.publicPem, algorithms: ["ES256", "HS256"] },
      /algorithm HS256 cannot be verified/,
    );
    optionError(
      { jwks: { keys: [{ ...p256.publicJwk, alg: "ES256" }] }, algorithms: ["RS256"] },
      /jwks: algorithm RS256 cannot be verified/,
    );
  });

  test("an empty JWK set", () => {
    const message = /jwks must be a JWK set with at least one key/;
    optionError({ jwks: { keys: [] }, algorithms: ["ES256"] }, message);
    optionError({ jwks: {}, algorithms: ["ES256"] }, message);
  });

  test("a JWK set with a private key", async () => {
    const { publicJwk } = await keyPair("ES256");
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    optionError(
      { jwks: { keys: [publicJwk, await exportJWK(privateKey)] }, algorithms: ["ES256"] },
      /jwks\.keys\[1\] holds a private key/,
    );
  });

  test("a clock tolerance out of range or unreadable", () => {
    // The documented bound: at most 60 seconds.
    optionError(
      { secret: secret32, clockTolerance: 301 },
      /clockTolerance is 301s; keep it at most/,
    );
    optionError(
      { secret: secret32, clockTolerance: 61 },
      /clockTolerance is 61s; keep it at most 60s/,
    );
    optionError(
      { secret: secret32, clockTolerance: "2m" },
      /clockTolerance is 120s; keep it at most/,
    );
    optionError({ secret: secret32, clockTolerance: -1 }, /clockTolerance must be seconds/);
    optionError({ secret: secret32, clockTolerance: "abc" }, /clockTolerance must be seconds/);
    assert.ok(createVerifier({ secret: secret32, clockTolerance: "1m" }));
    assert.ok(createVerifier({ secret: secret32, clockTolerance: 60 }));
    assert.ok(createVerifier({ secret: secret32, clockTolerance: 0 }));
  });

  test("an unreadable maxTokenAge", () => {
    optionError({ secret: secret32, maxTokenAge: "one hour" }, /maxTokenAge must be seconds/);
  });

  test("a maxTokenSize too small or not an integer", () => {
    const message = /maxTokenSize must be an integer of at least 64/;
    optionError({ secret: secret32, maxTokenSize: 10 }, message);
    optionError({ secret: secret32, maxTokenSize: 63 }, message);
    optionError({ secret: secret32, maxTokenSize: 100.5 }, message);
    optionError({ secret: secret32, maxTokenSize: Number.NaN }, message);
    optionError({ secret: secret32, maxTokenSize: "8192" }, message);
    assert.equal(createVerifier({ secret: secret32, maxTokenSize: 64 }).maxTokenSize, 64);
  });

  test("an empty issuer, audience or typ", () => {
    optionError({ secret: secret32, issuer: "" }, /issuer must be a non-empty string/);
    optionError({ secret: secret32, issuer: [] }, /issuer must be a non-empty string/);
    optionError({ secret: secret32, issuer: [issuer, ""] }, /issuer must be a non-empty string/);
    optionError({ secret: secret32, audience: "" }, /audience must be a non-empty string/);
    optionError({ secret: secret32, typ: "" }, /typ must be a non-empty string/);
  });

  test("an empty required claim name", () => {
    optionError({ secret: secret32, requiredClaims: [""] }, /requiredClaims must be/);
    optionError({ secret: secret32, requiredClaims: ["sub", 7] }, /requiredClaims must be/);
  });

  test("messages name the factory, so the caller finds the call", () => {
    optionError({ secret: "short" }, /^createVerifier: /);
  });
});

describe("every accepted key form verifies a token end to end", () => {
  const algorithms: AsymmetricAlg[] = ["RS256", "PS256", "ES256", "ES384", "EdDSA"];

  for (const alg of algorithms) {
    describe(alg, () => {
      const forms: [string, (kp: Awaited<ReturnType<typeof keyPair>>) => VerifierOptions][] = [
        ["PEM SPKI", (kp) => ({ publicKey: kp.publicPem, algorithms: [alg] })],
        ["JWK", (kp) => ({ publicKey: kp.publicJwk, algorithms: [alg] })],
        ["JWK naming alg, no algorithms", (kp) => ({ publicKey: { ...kp.publicJwk, alg } })],
        ["KeyObject", (kp) => ({ publicKey: kp.publicKeyObject, algorithms: [alg] })],
        ["CryptoKey", (kp) => ({ publicKey: kp.publicKey, algorithms: [alg] })],
        [
          "PEM X.509 certificate",
          (kp) => {
            const { pem, caPublicKey } = certificateFor(kp.publicKeyObject);
            // A real certificate: it parses, its signature holds, it carries the key.
            const certificate = new X509Certificate(pem);
            assert.ok(certificate.verify(caPublicKey));
            assert.ok(certificate.publicKey.equals(kp.publicKeyObject));
            return { publicKey: pem, algorithms: [alg] };
          },
        ],
        [
          "local JWKS with one key",
          (kp) => ({ jwks: { keys: [kp.publicJwk] }, algorithms: [alg] }),
        ],
      ];
      for (const [form, options] of forms) {
        test(form, async () => {
          const kp = await keyPair(alg);
          const verifier = createVerifier({ ...options(kp), issuer, audience });
          const token = await mint({ alg, privateKey: kp.privateKey });
          const claims = await verifier.verify(token);
          assert.equal(claims.sub, secretClaims.sub);
          assert.equal(claims.iss, issuer);
          // The key really is used: a changed signature fails.
          await assertRefused(
            verifier.verify(tamperSignature(token)),
            "ERR_SIGNATURE_INVALID",
            token,
          );
          // And a key of the same kind that is not configured fails too.
          const other = await keyPair(alg);
          const forged = await mint({ alg, privateKey: other.privateKey });
          await assertRefused(verifier.verify(forged), "ERR_SIGNATURE_INVALID", forged);
        });
      }

      test("local JWKS with two keys, picked by kid", async () => {
        const a = await keyPair(alg);
        const b = await keyPair(alg);
        const verifier = createVerifier({
          jwks: {
            keys: [
              { ...a.publicJwk, kid: "key-a" },
              { ...b.publicJwk, kid: "key-b" },
            ],
          },
          algorithms: [alg],
          issuer,
          audience,
        });
        for (const [kid, kp] of [
          ["key-a", a],
          ["key-b", b],
        ] as const) {
          const claims = await verifier.verify(await mint({ alg, kid, privateKey: kp.privateKey }));
          assert.equal(claims.sub, secretClaims.sub, kid);
        }
        // Signed with b but naming a: the kid picks a, and a's signature check fails.
        const mislabelled = await mint({ alg, kid: "key-a", privateKey: b.privateKey });
        await assertRefused(verifier.verify(mislabelled), "ERR_SIGNATURE_INVALID", mislabelled);
        const unknown = await mint({ alg, kid: "key-c", privateKey: b.privateKey });
        await assertRefused(verifier.verify(unknown), "ERR_KEY_NOT_FOUND", unknown);
      });
    });
  }

  test("Ed25519 under its fully-specified name", async () => {
    const { privateKey, publicKey } = await generateKeyPair("Ed25519", { extractable: true });
    const verifier = createVerifier({ publicKey, algorithms: ["Ed25519"] });
    const claims = await verifier.verify(await mint({ alg: "Ed25519", privateKey }));
    assert.equal(claims.sub, secretClaims.sub);
  });

  test("a JWKS mixing key types, each JWK naming its alg", async () => {
    const rsa = await keyPair("RS256");
    const ec = await keyPair("ES384");
    const ed = await keyPair("EdDSA");
    const verifier = createVerifier({
      jwks: {
        keys: [
          { ...rsa.publicJwk, kid: "r", alg: "RS256" },
          { ...ec.publicJwk, kid: "e", alg: "ES384" },
          { ...ed.publicJwk, kid: "d", alg: "EdDSA" },
        ],
      },
    });
    for (const [kid, kp] of [
      ["r", rsa],
      ["e", ec],
      ["d", ed],
    ] as const) {
      const claims = await verifier.verify(
        await mint({ alg: kp.alg, kid, privateKey: kp.privateKey }),
      );
      assert.equal(claims.sub, secretClaims.sub, kid);
    }
    // RS256 is allowed (for "r"), but the kid names the EC key: no RSA key has it.
    const crossed = await mint({ alg: "RS256", kid: "e", privateKey: rsa.privateKey });
    await assertRefused(verifier.verify(crossed), "ERR_KEY_NOT_FOUND", crossed);
  });

  test("a JWKS of two keys and a token without kid is refused, not guessed", async () => {
    const a = await keyPair("ES256");
    const b = await keyPair("ES256");
    const verifier = createVerifier({
      jwks: {
        keys: [
          { ...a.publicJwk, kid: "a" },
          { ...b.publicJwk, kid: "b" },
        ],
      },
      algorithms: ["ES256"],
    });
    const token = await mint({ alg: "ES256", privateKey: a.privateKey });
    await assertRefused(verifier.verify(token), "ERR_KEY_NOT_FOUND", token);
  });

  describe("HMAC secrets", () => {
    const cases: [string, string | Uint8Array][] = [
      ["HS256", secret32],
      ["HS256", new TextEncoder().encode(secret32)],
      ["HS384", secret64.slice(0, 48)],
      ["HS384", new TextEncoder().encode(secret64.slice(0, 48))],
      ["HS512", secret64],
      ["HS512", new TextEncoder().encode(secret64)],
    ];
    for (const [alg, secret] of cases) {
      const form = typeof secret === "string" ? "string" : "Uint8Array";
      test(`${alg} with a ${form} secret`, async () => {
        const bytes = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
        const verifier = createVerifier({ secret, algorithms: [alg], issuer, audience });
        const token = await mint({ alg, secret: bytes });
        assert.equal((await verifier.verify(token)).sub, secretClaims.sub);
        await assertRefused(
          verifier.verify(tamperSignature(token)),
          "ERR_SIGNATURE_INVALID",
          token,
        );
        const wrong = await mint({ alg, secret: new TextEncoder().encode("x".repeat(64)) });
        await assertRefused(verifier.verify(wrong), "ERR_SIGNATURE_INVALID", wrong);
      });
    }

    test("without algorithms, a secret allows the HS algorithms it is long enough for", async () => {
      const short = new TextEncoder().encode(secret32);
      const narrow = createVerifier({ secret: short });
      assert.equal(
        (await narrow.verify(await mint({ alg: "HS256", secret: short }))).sub,
        secretClaims.sub,
      );
      const hs384 = await mint({ alg: "HS384", secret: short });
      await assertRefused(narrow.verify(hs384), "ERR_ALGORITHM_NOT_ALLOWED", hs384);

      const long = new TextEncoder().encode(secret64);
      const wide = createVerifier({ secret: long });
      for (const alg of ["HS256", "HS384", "HS512"]) {
        assert.equal(
          (await wide.verify(await mint({ alg, secret: long }))).sub,
          secretClaims.sub,
          alg,
        );
      }
    });

    test("the verifier keeps its own copy of a Uint8Array secret", async () => {
      const bytes = new TextEncoder().encode(secret32);
      const verifier = createVerifier({ secret: bytes });
      const token = await mint({ alg: "HS256", secret: Uint8Array.from(bytes) });
      bytes.fill(0);
      assert.equal((await verifier.verify(token)).sub, secretClaims.sub);
    });
  });

  describe("non-extractable CryptoKey", () => {
    test("from jose generateKeyPair({ extractable: false })", async () => {
      // WebCrypto makes public keys extractable whatever the flag says; only
      // the private key is locked.
      const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: false });
      assert.equal(privateKey.extractable, false);
      const verifier = createVerifier({ publicKey, algorithms: ["ES256"] });
      assert.equal(
        (await verifier.verify(await mint({ alg: "ES256", privateKey }))).sub,
        secretClaims.sub,
      );
    });

    test("a public key imported non-extractable verifies, without a Node deprecation", async () => {
      const warnings: Error[] = [];
      const onWarning = (warning: Error) => warnings.push(warning);
      process.on("warning", onWarning);
      try {
        for (const alg of ["RS256", "PS256", "ES256", "ES384", "EdDSA"] as const) {
          const kp = await keyPair(alg);
          const publicKey = await importSPKI(kp.publicPem, alg, { extractable: false });
          assert.equal(publicKey.extractable, false);
          const verifier = createVerifier({ publicKey, algorithms: [alg] });
          const token = await mint({ alg, privateKey: kp.privateKey });
          assert.equal((await verifier.verify(token)).sub, secretClaims.sub, alg);
          await assertRefused(
            verifier.verify(tamperSignature(token)),
            "ERR_SIGNATURE_INVALID",
            token,
          );
        }
        // Warnings are emitted on a later tick.
        await new Promise((resolve) => setImmediate(resolve));
      } finally {
        process.off("warning", onWarning);
      }
      // DEP0204: "Passing a non-extractable CryptoKey to KeyObject.from() is
      // deprecated"; a later Node will throw, and every user sees the warning.
      assert.deepEqual(
        warnings.map((w) => `${(w as { code?: string }).code}: ${w.message}`),
        [],
      );
    });

    test("a non-extractable key is bound to the algorithm it was imported for", async () => {
      const rsa = await keyPair("RS256");
      const publicKey = await importSPKI(rsa.publicPem, "RS256", { extractable: false });
      optionError(
        { publicKey, algorithms: ["PS256"] },
        /algorithm PS256 cannot be verified .*RS256/,
      );
      const p256 = await keyPair("ES256");
      const ec = await importSPKI(p256.publicPem, "ES256", { extractable: false });
      optionError({ publicKey: ec, algorithms: ["ES384"] }, /algorithm ES384 cannot be verified/);
    });

    test("a non-extractable RSA key of 1024 bits is refused", async () => {
      const pem = rsaPublicKeySync(1024).export({ type: "spki", format: "pem" }).toString();
      const publicKey = await importSPKI(pem, "RS256", { extractable: false });
      optionError(
        { publicKey, algorithms: ["RS256"] },
        /1024-bit RSA key; RSA keys need at least 2048/,
      );
    });
  });
});

describe("a PEM or JWK is read when the options are, and imported on first use", () => {
  test("an RSA certificate of 1024 bits is refused at once", () => {
    const { pem } = certificateFor(rsaPublicKeySync(1024));
    optionError(
      { publicKey: pem, algorithms: ["RS256"] },
      /publicKey is a 1024-bit RSA key; RSA keys need at least 2048 bits/,
    );
  });

  test("a PEM that holds no public key is refused at once", async () => {
    const { publicPem } = await keyPair("ES256");
    const message = /publicKey is not a valid public key/;
    optionError(
      { publicKey: publicPem.replace(/PUBLIC KEY/g, "SOMETHING"), algorithms: ["ES256"] },
      message,
    );
    optionError({ publicKey: publicPem.replace(/\nM/, "\nA"), algorithms: ["ES256"] }, message);
    optionError({ publicKey: `${publicPem}${publicPem}`, algorithms: ["ES256"] }, message);
  });

  test("warmUp imports a good PEM and JWK", async () => {
    for (const form of ["publicPem", "publicJwk"] as const) {
      const kp = await keyPair("PS256");
      const verifier = createVerifier({ publicKey: kp[form], algorithms: ["RS256", "PS256"] });
      await verifier.warmUp();
      const token = await mint({ alg: "PS256", privateKey: kp.privateKey });
      assert.equal((await verifier.verify(token)).sub, secretClaims.sub, form);
    }
  });

  test("an EC point off its curve: warmUp rejects, and calls are refused as unavailable", async () => {
    const kp = await keyPair("ES256");
    const y = Buffer.from(kp.publicJwk.y as string, "base64url");
    y[31] = (y[31] as number) ^ 1;
    const publicKey = { ...kp.publicJwk, y: y.toString("base64url") };
    // Right members, right sizes: nothing to refuse without importing it.
    const verifier = createVerifier({ publicKey, algorithms: ["ES256"] });
    await assert.rejects(verifier.warmUp(), { name: "AuthError", code: "ERR_KEYS_UNAVAILABLE" });
    const token = await mint({ alg: "ES256", privateKey: kp.privateKey });
    await assertRefused(verifier.verify(token), "ERR_KEYS_UNAVAILABLE", token);
    // Tried again, and refused again: a key that will not import never verifies.
    await assertRefused(verifier.verify(token), "ERR_KEYS_UNAVAILABLE", token);
  });
});
