// The DPoP proof checks (RFC 9449, section 4.3) one by one, their order (what
// costs no signature check comes first), and the option checks.
import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import { describe, test } from "node:test";
import { calculateJwkThumbprint, exportJWK } from "jose";
import type { JwtClaims } from "../../src/core/claims.js";
import { createDpopChecker, type DpopOptions, type DpopRequest } from "../../src/core/dpop.js";
import { AuthError, type AuthErrorCode, type DpopReplayStore } from "../../src/index.js";
import {
  ath,
  cnfOf,
  type DpopKey,
  generateDpopKey,
  makeProof,
  type ProofOptions,
} from "../helpers/dpop.js";
import { b64url } from "../helpers/fixtures.js";

const origin = "https://api.example.test";
const path = "/demo.v1.DemoService/WhoAmI";
const token = "header.payload.signature";
const key = await generateDpopKey("ES256");
const claims: JwtClaims = cnfOf(key);

function checker(options: Partial<DpopOptions> = {}) {
  return createDpopChecker({ origins: [origin], ...options }, 5);
}

function request(proof: string | null, overrides: Partial<DpopRequest> = {}): DpopRequest {
  return { proof, method: "POST", url: `http://10.0.0.7:8080${path}`, ...overrides };
}

function proofOf(options: Partial<ProofOptions> = {}, signer: DpopKey = key): Promise<string> {
  return makeProof(signer, { token, htu: `${origin}${path}`, ...options });
}

/** A valid ES256 proof with `extra` in its header, which jose will not sign (e.g. `crit`). */
async function signedByHand(extra: Record<string, unknown>): Promise<string> {
  const header = b64url({ typ: "dpop+jwt", alg: "ES256", jwk: key.publicJwk, ...extra });
  const payload = b64url({
    jti: crypto.randomUUID(),
    htm: "POST",
    htu: `${origin}${path}`,
    iat: Math.floor(Date.now() / 1000),
    ath: ath(token),
  });
  const signature = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    key.privateKey,
    new TextEncoder().encode(`${header}.${payload}`),
  );
  return `${header}.${payload}.${Buffer.from(signature).toString("base64url")}`;
}

async function assertRefused(promise: Promise<unknown>, code: AuthErrorCode) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof AuthError, "an AuthError");
    assert.equal(err.code, code);
    return true;
  });
}

describe("DPoP proof checks", () => {
  test("a valid proof for the token, method and URL passes", async () => {
    await checker().check(request(await proofOf()), token, claims);
  });

  test("every default algorithm passes", async () => {
    for (const alg of ["ES256", "EdDSA", "PS256", "RS256"]) {
      const signer = await generateDpopKey(alg);
      const proof = await proofOf({}, signer);
      await checker().check(request(proof), token, cnfOf(signer));
    }
  });

  test("htu is compared after RFC 3986 normalisation of scheme, host and default port", async () => {
    const c = checker();
    for (const htu of [
      `HTTPS://API.EXAMPLE.TEST${path}`,
      `https://api.example.test:443${path}`,
      `https://api.example.test/x/..${path}`,
    ]) {
      await c.check(request(await proofOf({ htu })), token, claims);
    }
  });

  test("a proof signed by hand passes without crit, and is refused with it", async () => {
    await checker().check(request(await signedByHand({})), token, claims);
    await assertRefused(
      checker().check(request(await signedByHand({ crit: ["b64"], b64: true })), token, claims),
      "ERR_DPOP_PROOF_MALFORMED",
    );
  });

  test("one htu matches the path of each request on its own", async () => {
    // The paths of htu and request URL are worked out once per string: a
    // match for one request must not carry over to another.
    const dpop = checker();
    await dpop.check(request(await proofOf()), token, claims);
    const other = { url: `http://10.0.0.7:8080/demo.v1.DemoService/Ping` };
    await assertRefused(
      dpop.check(request(await proofOf(), other), token, claims),
      "ERR_DPOP_URL_MISMATCH",
    );
    await dpop.check(request(await proofOf()), token, claims);
  });

  test("the request's Host never counts: only the path of its URL", async () => {
    const proof = await proofOf({ htu: `https://evil.test${path}` });
    await assertRefused(
      checker().check(request(proof, { url: `https://evil.test${path}` }), token, claims),
      "ERR_DPOP_URL_MISMATCH",
    );
  });

  const refusals: [string, () => Promise<DpopRequest>, AuthErrorCode, JwtClaims?][] = [
    ["no proof", async () => request(null), "ERR_DPOP_PROOF_MISSING"],
    ["an empty proof", async () => request(""), "ERR_DPOP_PROOF_MISSING"],
    [
      "two proofs",
      async () => request(`${await proofOf()}, ${await proofOf()}`),
      "ERR_DPOP_PROOF_MALFORMED",
    ],
    [
      "a proof over maxProofSize",
      async () => request(`${await proofOf()}${"A".repeat(8192)}`),
      "ERR_DPOP_PROOF_TOO_LARGE",
    ],
    ["not a JWS", async () => request("not-a-jws"), "ERR_DPOP_PROOF_MALFORMED"],
    [
      "typ JWT",
      async () => request(await proofOf({ header: { typ: "JWT" } })),
      "ERR_DPOP_TYPE_INVALID",
    ],
    [
      "no typ",
      async () => request(await proofOf({ header: { typ: undefined } })),
      "ERR_DPOP_TYPE_INVALID",
    ],
    [
      "an alg not allowed",
      async () => request(await proofOf({}, await generateDpopKey("ES384"))),
      "ERR_DPOP_ALGORITHM_NOT_ALLOWED",
    ],
    [
      "a crit header",
      async () => request(await signedByHand({ crit: ["x-acme"], "x-acme": true })),
      "ERR_DPOP_PROOF_MALFORMED",
    ],
    [
      "no jwk",
      async () => request(await proofOf({ header: { jwk: undefined } })),
      "ERR_DPOP_KEY_INVALID",
    ],
    [
      "a private jwk",
      async () => request(await proofOf({ header: { jwk: { ...key.publicJwk, d: "AAAA" } } })),
      "ERR_DPOP_KEY_INVALID",
    ],
    [
      "a symmetric jwk",
      async () => request(await proofOf({ header: { jwk: { kty: "oct", k: "AAAA" } } })),
      "ERR_DPOP_KEY_INVALID",
    ],
    ["no jti", async () => request(await proofOf({ omit: ["jti"] })), "ERR_DPOP_PROOF_MALFORMED"],
    ["no ath", async () => request(await proofOf({ omit: ["ath"] })), "ERR_DPOP_PROOF_MALFORMED"],
    [
      "iat a string",
      async () => request(await proofOf({ claims: { iat: "now" } })),
      "ERR_DPOP_PROOF_MALFORMED",
    ],
    [
      "htm GET on a POST",
      async () => request(await proofOf({ htm: "GET" })),
      "ERR_DPOP_METHOD_MISMATCH",
    ],
    [
      "htm post (case)",
      async () => request(await proofOf({ htm: "post" })),
      "ERR_DPOP_METHOD_MISMATCH",
    ],
    [
      "htu with another path",
      async () => request(await proofOf({ htu: `${origin}/demo.v1.DemoService/Ping` })),
      "ERR_DPOP_URL_MISMATCH",
    ],
    [
      "htu with a query",
      async () => request(await proofOf({ htu: `${origin}${path}?a=1` })),
      "ERR_DPOP_URL_MISMATCH",
    ],
    [
      "htu with a fragment",
      async () => request(await proofOf({ htu: `${origin}${path}#f` })),
      "ERR_DPOP_URL_MISMATCH",
    ],
    [
      "htu over http",
      async () => request(await proofOf({ htu: `http://api.example.test${path}` })),
      "ERR_DPOP_URL_MISMATCH",
    ],
    [
      "htu on another port",
      async () => request(await proofOf({ htu: `https://api.example.test:8443${path}` })),
      "ERR_DPOP_URL_MISMATCH",
    ],
    [
      "htu with credentials",
      async () => request(await proofOf({ htu: `https://u:p@api.example.test${path}` })),
      "ERR_DPOP_URL_MISMATCH",
    ],
    ["htu not a URL", async () => request(await proofOf({ htu: "api" })), "ERR_DPOP_URL_MISMATCH"],
    [
      "a stale iat",
      async () => request(await proofOf({ claims: { iat: Math.floor(Date.now() / 1000) - 306 } })),
      "ERR_DPOP_PROOF_EXPIRED",
    ],
    [
      "a future iat",
      async () => request(await proofOf({ claims: { iat: Math.floor(Date.now() / 1000) + 10 } })),
      "ERR_DPOP_PROOF_NOT_YET_VALID",
    ],
    [
      "a wrong ath",
      async () => request(await proofOf({ token: "another.token.here" })),
      "ERR_DPOP_ATH_MISMATCH",
    ],
    [
      "a token bound to another key",
      async () => request(await proofOf()),
      "ERR_DPOP_KEY_MISMATCH",
      { cnf: { jkt: "x".repeat(43) } },
    ],
    ["an unbound token", async () => request(await proofOf()), "ERR_DPOP_KEY_MISMATCH", {}],
    [
      "a bad signature",
      async () => request(`${(await proofOf()).slice(0, -4)}AAAA`),
      "ERR_DPOP_SIGNATURE_INVALID",
    ],
  ];
  for (const [name, make, code, tokenClaims] of refusals) {
    test(`refuses ${name}: ${code}`, async () => {
      await assertRefused(checker().check(await make(), token, tokenClaims ?? claims), code);
    });
  }

  test("a cheap check refuses before the signature is looked at", async () => {
    // A forged signature and a wrong method: the method decides.
    const forged = `${(await proofOf({ htm: "GET" })).slice(0, -4)}AAAA`;
    await assertRefused(
      checker().check(request(forged), token, claims),
      "ERR_DPOP_METHOD_MISMATCH",
    );
  });

  test("an RSA proof key under 2048 bits is refused", async () => {
    // jose will not sign with such a key: the proof is signed by hand.
    const pair = generateKeyPairSync("rsa", { modulusLength: 1024 });
    const jwk = await exportJWK(pair.publicKey);
    const header = b64url({ typ: "dpop+jwt", alg: "RS256", jwk });
    const iat = Math.floor(Date.now() / 1000);
    const payload = b64url({
      jti: "j",
      htm: "POST",
      htu: `${origin}${path}`,
      iat,
      ath: ath(token),
    });
    const signature = sign("sha256", Buffer.from(`${header}.${payload}`), pair.privateKey);
    const proof = `${header}.${payload}.${signature.toString("base64url")}`;
    const bound = { cnf: { jkt: await calculateJwkThumbprint(jwk) } };
    await assertRefused(checker().check(request(proof), token, bound), "ERR_DPOP_KEY_INVALID");
  });
});

describe("DPoP replays", () => {
  test("a proof is accepted once", async () => {
    const c = checker();
    const proof = await proofOf();
    await c.check(request(proof), token, claims);
    await assertRefused(c.check(request(proof), token, claims), "ERR_DPOP_REPLAYED");
  });

  test("a proof is recorded only once its signature verified", async () => {
    const c = checker();
    const proof = await proofOf({ claims: { jti: "once" } });
    const forged = `${proof.slice(0, -4)}AAAA`;
    await assertRefused(c.check(request(forged), token, claims), "ERR_DPOP_SIGNATURE_INVALID");
    await c.check(request(proof), token, claims);
  });

  test("the store sees the key's thumbprint, the jti, and when the proof goes stale", async () => {
    const used: [string, number][] = [];
    const replayStore: DpopReplayStore = {
      use(k, e) {
        used.push([k, e]);
        return true;
      },
    };
    const iat = Math.floor(Date.now() / 1000);
    await checker({ replayStore }).check(
      request(await proofOf({ claims: { jti: "j-1", iat } })),
      token,
      claims,
    );
    assert.deepEqual(used, [[`${key.thumbprint}:j-1`, iat + 300 + 5]]);
  });

  test("a store that throws, rejects or answers other than true refuses; failures as unavailable", async () => {
    const stores: [DpopReplayStore, AuthErrorCode][] = [
      [
        {
          use: () => {
            throw new Error("down");
          },
        },
        "ERR_DPOP_REPLAY_UNAVAILABLE",
      ],
      [{ use: () => Promise.reject(new Error("timeout")) }, "ERR_DPOP_REPLAY_UNAVAILABLE"],
      [{ use: () => "yes" as unknown as boolean }, "ERR_DPOP_REPLAYED"],
    ];
    for (const [replayStore, code] of stores) {
      await assertRefused(
        checker({ replayStore }).check(request(await proofOf()), token, claims),
        code,
      );
    }
  });
});

describe("createDpopChecker options", () => {
  const mistakes: [string, unknown, RegExp][] = [
    ["no origins", { origins: [] }, /origins must list/],
    ["an origin with a path", { origins: ["https://a.test/api"] }, /is not an origin/],
    ["an origin that is not http(s)", { origins: ["ftp://a.test"] }, /is not an origin/],
    ["an unknown option", { origins: [origin], orgins: [] }, /unknown option `orgins`/],
    ["an unknown algorithm", { origins: [origin], algorithms: ["HS256"] }, /HS256 is not one of/],
    [
      "required not a boolean",
      { origins: [origin], required: "yes" },
      /required must be true or false/,
    ],
    [
      "a short nonce secret",
      { origins: [origin], nonce: { secret: "short" } },
      /at least 32 bytes/,
    ],
    ["a replay store without use", { origins: [origin], replayStore: {} }, /replayStore must be/],
    ["maxProofSize 0", { origins: [origin], maxProofSize: 0 }, /maxProofSize must be/],
  ];
  for (const [name, options, message] of mistakes) {
    test(`${name} is a TypeError`, () => {
      assert.throws(
        () => createDpopChecker(options as DpopOptions, 5),
        (err: unknown) => {
          assert.ok(err instanceof TypeError);
          assert.match(err.message, /^dpop: /);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }
});
