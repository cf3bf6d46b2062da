import * as assert from "node:assert/strict";
import { KeyObject } from "node:crypto";
import { after, before, describe, mock, test } from "node:test";
import { exportJWK, generateKeyPair } from "jose";
import {
  AuthError,
  type AuthErrorCode,
  createVerifier,
  type JwtClaims,
  type VerifierOptions,
} from "../../src/index.js";
import {
  allScopes,
  assertRefused,
  audience,
  compactJws,
  freezeClock,
  frozenNowMs,
  hmacSign,
  issuer,
  keyPair,
  mint,
  nowSeconds,
  secret64,
  secretClaims,
  signRaw,
  tamperSignature,
} from "../helpers/fixtures.js";

// Every test here runs on a frozen clock, so the boundaries can be tested to
// the second: jose and the verifier both read the time through Date.
let setClock: (seconds: number) => void;
before(() => {
  setClock = freezeClock();
});
after(() => {
  mock.timers.reset();
});

const now = frozenNowMs / 1000;

/** An ES256 key pair, a verifier for it, and a way to sign claims with it. */
async function setup(options: Partial<VerifierOptions> = {}) {
  const kp = await keyPair("ES256");
  const verifier = createVerifier({
    publicKey: kp.publicKey,
    algorithms: ["ES256"],
    issuer,
    audience,
    ...options,
  } as VerifierOptions);
  return {
    kp,
    verifier,
    sign: (claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) =>
      mint({ alg: "ES256", privateKey: kp.privateKey }, { claims, header }),
  };
}

async function refused(
  verifier: { verify(token: string): Promise<JwtClaims> },
  token: string,
  code: AuthErrorCode,
) {
  return assertRefused(verifier.verify(token), code, token);
}

/** The order of P-256, n: an ECDSA signature (r, s) also verifies as (r, n − s). */
const p256Order = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** The other valid spelling of an ES256 token: the same r, and n − s for s. */
function withNegatedS(token: string): string {
  const [header, payload, signature] = token.split(".");
  const bytes = Buffer.from(signature ?? "", "base64url");
  const s = BigInt(`0x${bytes.subarray(32).toString("hex")}`);
  const negated = Buffer.from((p256Order - s).toString(16).padStart(64, "0"), "hex");
  return `${header}.${payload}.${Buffer.concat([bytes.subarray(0, 32), negated]).toString("base64url")}`;
}

test("the clock is frozen", () => {
  assert.equal(nowSeconds(), now);
});

describe("a valid token", () => {
  test("resolves to its claims", async () => {
    const { verifier, sign } = await setup();
    const claims = await verifier.verify(await sign({ jti: "id-1" }));
    assert.deepEqual(
      { ...claims },
      {
        iss: issuer,
        aud: audience,
        scope: allScopes,
        iat: now,
        exp: now + 300,
        jti: "id-1",
        ...secretClaims,
      },
    );
  });

  test("claims are frozen all the way down, with null prototypes", async () => {
    const { verifier, sign } = await setup();
    const claims = await verifier.verify(
      await sign({
        profile: { address: { city: "Lyon" }, roles: ["admin", { name: "ops" }] },
        scope: ["read", "write"],
      }),
    );
    const profile = claims.profile as { address: object; roles: unknown[] };
    const scope = claims.scope as string[];
    for (const [path, value] of [
      ["claims", claims],
      ["claims.profile", profile],
      ["claims.profile.address", profile.address],
      ["claims.profile.roles[1]", profile.roles[1]],
    ] as const) {
      assert.equal(Object.getPrototypeOf(value), null, `${path} has a prototype`);
      assert.ok(Object.isFrozen(value), `${path} is not frozen`);
    }
    assert.ok(Array.isArray(scope));
    assert.ok(Object.isFrozen(scope));
    assert.ok(Object.isFrozen(profile.roles));
    // Modules are strict: writes to frozen objects throw.
    assert.throws(() => {
      (claims as Record<string, unknown>).sub = "someone-else";
    }, TypeError);
    assert.throws(() => {
      delete (claims as Record<string, unknown>).exp;
    }, TypeError);
    assert.throws(() => {
      scope.push("admin");
    }, TypeError);
    assert.throws(() => {
      (profile.address as Record<string, unknown>).city = "Paris";
    }, TypeError);
    assert.equal(claims.sub, secretClaims.sub);
  });

  test("a `__proto__` key stays a plain own data property and pollutes nothing", async () => {
    const { kp, verifier } = await setup();
    // Hand-written JSON: JSON.parse makes "__proto__" an own property, which an
    // unsafe copy (`{ ...x }`, `Object.assign`, `obj[key] = value`) would turn
    // into a prototype.
    const payload = `{"iss":${JSON.stringify(issuer)},"aud":${JSON.stringify(audience)},"exp":${now + 60},"sub":"${secretClaims.sub}","__proto__":{"polluted":"yes","isAdmin":true},"nested":{"__proto__":{"polluted":"nested"}}}`;
    const token = await signRaw(kp.privateKey, { alg: "ES256" }, payload);
    const claims = await verifier.verify(token);
    try {
      assert.ok(Object.hasOwn(claims, "__proto__"));
      const descriptor = Object.getOwnPropertyDescriptor(claims, "__proto__");
      assert.ok(descriptor !== undefined && "value" in descriptor);
      assert.equal(descriptor.get, undefined);
      assert.equal(descriptor.writable, false);
      assert.equal((descriptor.value as { polluted?: unknown }).polluted, "yes");
      assert.equal(Object.getPrototypeOf(claims), null);
      assert.equal(claims.polluted, undefined);
      assert.equal(claims.isAdmin, undefined);
      const nested = claims.nested as Record<string, unknown>;
      assert.equal(Object.getPrototypeOf(nested), null);
      assert.equal(nested.polluted, undefined);
      assert.ok(Object.hasOwn(nested, "__proto__"));
      assert.equal(({} as { polluted?: unknown }).polluted, undefined);
      assert.equal(Object.hasOwn(Object.prototype, "polluted"), false);
      assert.equal(Object.hasOwn(Object.prototype, "isAdmin"), false);
    } finally {
      // Never leave a polluted prototype behind for other tests.
      delete (Object.prototype as Record<string, unknown>).polluted;
      delete (Object.prototype as Record<string, unknown>).isAdmin;
    }
  });

  test("the verifier works for many tokens, each with its own claims", async () => {
    const { verifier, sign } = await setup();
    const [a, b] = await Promise.all([
      verifier.verify(await sign({ sub: "user-a" })),
      verifier.verify(await sign({ sub: "user-b" })),
    ]);
    assert.equal(a.sub, "user-a");
    assert.equal(b.sub, "user-b");
  });
});

describe("time", () => {
  test("exp in the past beyond the tolerance: ERR_TOKEN_EXPIRED, 'token expired'", async () => {
    const { verifier, sign } = await setup();
    for (const exp of [now - 3600, now - 6, now - 5]) {
      const err = await refused(verifier, await sign({ exp }), "ERR_TOKEN_EXPIRED");
      assert.equal(err.message, "token expired");
      assert.equal(err.challenge, "invalid_token");
    }
  });

  test("exp within the default 5 s tolerance is accepted", async () => {
    const { verifier, sign } = await setup();
    for (const exp of [now - 4, now, now + 1]) {
      assert.equal((await verifier.verify(await sign({ exp }))).exp, exp);
    }
  });

  test("clockTolerance moves the boundary", async () => {
    const { verifier, sign } = await setup({ clockTolerance: "1m" });
    assert.equal((await verifier.verify(await sign({ exp: now - 59 }))).exp, now - 59);
    await refused(verifier, await sign({ exp: now - 60 }), "ERR_TOKEN_EXPIRED");
    const strict = await setup({ clockTolerance: 0 });
    await refused(strict.verifier, await strict.sign({ exp: now }), "ERR_TOKEN_EXPIRED");
  });

  test("no exp: ERR_CLAIM_MISSING", async () => {
    const { verifier, sign } = await setup();
    await refused(verifier, await sign({ exp: undefined }), "ERR_CLAIM_MISSING");
    // Also with a secret, and with no other rule configured.
    const bytes = new TextEncoder().encode(secret64);
    const bare = createVerifier({ secret: bytes });
    await refused(
      bare,
      await mint({ alg: "HS256", secret: bytes }, { claims: { exp: undefined } }),
      "ERR_CLAIM_MISSING",
    );
  });

  test("exp that is not a number: ERR_CLAIM_INVALID", async () => {
    const { verifier, sign } = await setup();
    await refused(verifier, await sign({ exp: String(now + 60) }), "ERR_CLAIM_INVALID");
  });

  test("nbf in the future beyond the tolerance: ERR_TOKEN_NOT_YET_VALID", async () => {
    const { verifier, sign } = await setup();
    await refused(verifier, await sign({ nbf: now + 6 }), "ERR_TOKEN_NOT_YET_VALID");
    await refused(verifier, await sign({ nbf: now + 3600 }), "ERR_TOKEN_NOT_YET_VALID");
    assert.equal((await verifier.verify(await sign({ nbf: now + 5 }))).nbf, now + 5);
  });

  test("iat in the future beyond the tolerance: ERR_TOKEN_NOT_YET_VALID", async () => {
    const { verifier, sign } = await setup();
    await refused(verifier, await sign({ iat: now + 6 }), "ERR_TOKEN_NOT_YET_VALID");
    await refused(verifier, await sign({ iat: now + 3600 }), "ERR_TOKEN_NOT_YET_VALID");
    assert.equal((await verifier.verify(await sign({ iat: now + 5 }))).iat, now + 5);
    // Also when maxTokenAge makes jose check iat itself.
    const aged = await setup({ maxTokenAge: "15m" });
    await refused(aged.verifier, await aged.sign({ iat: now + 6 }), "ERR_TOKEN_NOT_YET_VALID");
  });

  test("maxTokenAge exceeded: ERR_TOKEN_TOO_OLD", async () => {
    const { verifier, sign } = await setup({ maxTokenAge: "15m" });
    // 15 minutes plus the 5 s tolerance is still fine; one more second is not.
    assert.equal((await verifier.verify(await sign({ iat: now - 905 }))).iat, now - 905);
    await refused(verifier, await sign({ iat: now - 906 }), "ERR_TOKEN_TOO_OLD");
    await refused(verifier, await sign({ iat: now - 86_400 }), "ERR_TOKEN_TOO_OLD");
  });

  test("maxTokenAge makes iat required", async () => {
    const { verifier, sign } = await setup({ maxTokenAge: 60 });
    await refused(verifier, await sign({ iat: undefined }), "ERR_CLAIM_MISSING");
  });
});

describe("issuer, audience, type and required claims", () => {
  test("wrong iss: ERR_ISSUER_INVALID", async () => {
    const { verifier, sign } = await setup();
    for (const iss of ["https://evil.example/", issuer.slice(0, -1), issuer.toUpperCase()]) {
      await refused(verifier, await sign({ iss }), "ERR_ISSUER_INVALID");
    }
  });

  test("missing iss when an issuer is configured: ERR_CLAIM_MISSING", async () => {
    const { verifier, sign } = await setup();
    await refused(verifier, await sign({ iss: undefined }), "ERR_CLAIM_MISSING");
  });

  test("a list of issuers accepts each of them", async () => {
    const other = "https://other.issuer.test/";
    const { verifier, sign } = await setup({ issuer: [issuer, other] });
    assert.equal((await verifier.verify(await sign({ iss: other }))).iss, other);
    assert.equal((await verifier.verify(await sign({ iss: issuer }))).iss, issuer);
    await refused(verifier, await sign({ iss: "https://third.test/" }), "ERR_ISSUER_INVALID");
  });

  test("wrong aud: ERR_AUDIENCE_INVALID", async () => {
    const { verifier, sign } = await setup();
    await refused(verifier, await sign({ aud: "another-api" }), "ERR_AUDIENCE_INVALID");
    await refused(verifier, await sign({ aud: ["a", "b"] }), "ERR_AUDIENCE_INVALID");
    await refused(verifier, await sign({ aud: [] }), "ERR_AUDIENCE_INVALID");
  });

  test("an aud array containing the audience is accepted", async () => {
    const { verifier, sign } = await setup();
    const claims = await verifier.verify(await sign({ aud: ["another-api", audience] }));
    assert.deepEqual([...(claims.aud as string[])], ["another-api", audience]);
  });

  test("missing aud when an audience is configured: ERR_CLAIM_MISSING", async () => {
    const { verifier, sign } = await setup();
    await refused(verifier, await sign({ aud: undefined }), "ERR_CLAIM_MISSING");
  });

  test("wrong typ: ERR_TYPE_INVALID", async () => {
    const { verifier, sign } = await setup({ typ: "at+jwt" });
    await refused(verifier, await sign({}, { typ: "JWT" }), "ERR_TYPE_INVALID");
    await refused(verifier, await sign({}), "ERR_TYPE_INVALID");
    assert.ok(await verifier.verify(await sign({}, { typ: "at+jwt" })));
    assert.ok(await verifier.verify(await sign({}, { typ: "application/at+jwt" })));
    // Compared without case; only a value without "/" takes the application/ prefix.
    assert.ok(await verifier.verify(await sign({}, { typ: "AT+JWT" })));
    assert.ok(await verifier.verify(await sign({}, { typ: "Application/At+Jwt" })));
    await refused(verifier, await sign({}, { typ: "text/at+jwt" }), "ERR_TYPE_INVALID");
    await refused(verifier, await sign({}, { typ: "at+jwt " }), "ERR_TYPE_INVALID");
    await refused(verifier, await sign({}, { typ: 1 as unknown as string }), "ERR_TYPE_INVALID");
  });

  test("a missing required claim: ERR_CLAIM_MISSING", async () => {
    const { verifier, sign } = await setup({ requiredClaims: ["tenant", "scope"] });
    await refused(verifier, await sign({ scope: undefined }), "ERR_CLAIM_MISSING");
    await refused(verifier, await sign({ scope: "read", tenant: undefined }), "ERR_CLAIM_MISSING");
    assert.equal((await verifier.verify(await sign({ scope: "read" }))).scope, "read");
  });
});

describe("signature, algorithm and key", () => {
  test("a changed signature: ERR_SIGNATURE_INVALID", async () => {
    const { verifier, sign } = await setup();
    const token = await sign();
    assert.ok(await verifier.verify(token));
    const err = await refused(verifier, tamperSignature(token), "ERR_SIGNATURE_INVALID");
    // The cause keeps what helps a log (jose's error class and code), nothing more.
    assert.ok(err.cause instanceof Error);
    assert.match(String(err.cause), /JWSSignatureVerificationFailed/);
    assert.match(String(err.cause), /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
  });

  test("a changed payload: ERR_SIGNATURE_INVALID", async () => {
    const { verifier, sign } = await setup();
    const [header, , signature] = (await sign()).split(".");
    const forged = compactJws(
      JSON.parse(Buffer.from(header ?? "", "base64url").toString()),
      { iss: issuer, aud: audience, exp: now + 60, ...secretClaims, role: "admin" },
      signature ?? "",
    );
    await refused(verifier, forged, "ERR_SIGNATURE_INVALID");
  });

  test("alg none is refused with ERR_ALGORITHM_NOT_ALLOWED", async () => {
    const payload = { iss: issuer, aud: audience, exp: now + 60, ...secretClaims };
    const bytes = new TextEncoder().encode(secret64);
    const es = await setup();
    const rsa = await keyPair("RS256");
    const verifiers = {
      publicKey: es.verifier,
      secret: createVerifier({ secret: bytes }),
      jwks: createVerifier({
        jwks: { keys: [{ ...rsa.publicJwk, kid: "k" }] },
        algorithms: ["RS256"],
      }),
    };
    const tokens = [
      compactJws({ alg: "none", typ: "JWT" }, payload, "c2lnbmF0dXJl"),
      compactJws({ alg: "none", kid: "k" }, payload, "c2lnbmF0dXJl"),
      compactJws({ alg: "None" }, payload, "c2lnbmF0dXJl"),
    ];
    for (const [name, verifier] of Object.entries(verifiers)) {
      for (const token of tokens) {
        const err = await refused(verifier, token, "ERR_ALGORITHM_NOT_ALLOWED");
        assert.ok(
          ["ERR_ALGORITHM_NOT_ALLOWED", "ERR_TOKEN_MALFORMED"].includes(err.code),
          `${name}: ${err.code}`,
        );
      }
      // With an empty signature it is not even a compact JWS.
      await refused(verifier, compactJws({ alg: "none" }, payload, ""), "ERR_TOKEN_MALFORMED");
    }
  });

  test("an algorithm outside the allowlist: ERR_ALGORITHM_NOT_ALLOWED", async () => {
    const bytes = new TextEncoder().encode(secret64);
    const verifier = createVerifier({ secret: bytes, algorithms: ["HS256"] });
    assert.ok(await verifier.verify(await mint({ alg: "HS256", secret: bytes })));
    for (const alg of ["HS384", "HS512"]) {
      await refused(verifier, await mint({ alg, secret: bytes }), "ERR_ALGORITHM_NOT_ALLOWED");
    }
    // Same key family, other algorithm: ES256 allowed, an RSA key may not pick PS256.
    const rsa = await keyPair("RS256");
    const rs = createVerifier({ publicKey: rsa.publicPem, algorithms: ["RS256"] });
    const pss = await mint({ alg: "PS256", privateKey: KeyObject.from(rsa.privateKey) });
    await refused(rs, pss, "ERR_ALGORITHM_NOT_ALLOWED");
  });

  test("HS256 signed with the RSA public key as secret: ERR_ALGORITHM_NOT_ALLOWED", async () => {
    const rsa = await keyPair("RS256");
    const confusion = await mint({ alg: "HS256", secret: new TextEncoder().encode(rsa.publicPem) });
    for (const options of [
      { publicKey: rsa.publicPem, algorithms: ["RS256"] },
      { publicKey: rsa.publicJwk, algorithms: ["RS256"] },
      { publicKey: { ...rsa.publicJwk, alg: "RS256" } },
      { jwks: { keys: [rsa.publicJwk] }, algorithms: ["RS256"] },
    ]) {
      await refused(createVerifier(options), confusion, "ERR_ALGORITHM_NOT_ALLOWED");
    }
  });

  test("keys named in the token header are ignored (jwk, jku, x5u)", async () => {
    const rsa = await keyPair("RS256");
    const attacker = await generateKeyPair("RS256", { extractable: true });
    const header = {
      alg: "RS256",
      kid: "k",
      jwk: await exportJWK(attacker.publicKey),
      jku: "https://attacker.invalid/jwks.json",
      x5u: "https://attacker.invalid/cert.pem",
    };
    const token = await mint({ alg: "RS256", privateKey: attacker.privateKey }, { header });
    const direct = createVerifier({ publicKey: rsa.publicPem, algorithms: ["RS256"] });
    await refused(direct, token, "ERR_SIGNATURE_INVALID");
    const set = createVerifier({
      jwks: { keys: [{ ...rsa.publicJwk, kid: "k" }] },
      algorithms: ["RS256"],
    });
    await refused(set, token, "ERR_SIGNATURE_INVALID");
  });

  test("an unknown kid against a JWKS: ERR_KEY_NOT_FOUND", async () => {
    const kp = await keyPair("ES256");
    const verifier = createVerifier({
      jwks: { keys: [{ ...kp.publicJwk, kid: "known" }] },
      algorithms: ["ES256"],
    });
    assert.ok(
      await verifier.verify(await mint({ alg: "ES256", kid: "known", privateKey: kp.privateKey })),
    );
    const token = await mint({ alg: "ES256", kid: "unknown", privateKey: kp.privateKey });
    await refused(verifier, token, "ERR_KEY_NOT_FOUND");
  });
});

describe("malformed and oversized tokens", () => {
  test("verify never throws: a refusal decided at once is a rejected promise too", async () => {
    const { verifier, sign } = await setup();
    const cases: [unknown, AuthErrorCode][] = [
      [42, "ERR_TOKEN_MALFORMED"],
      ["a".repeat(10_000), "ERR_TOKEN_TOO_LARGE"],
      ["not.a-jws", "ERR_TOKEN_MALFORMED"],
      [await sign({ exp: now - 3600 }), "ERR_TOKEN_EXPIRED"],
    ];
    for (const [token, code] of cases) {
      let pending: Promise<JwtClaims> | undefined;
      assert.doesNotThrow(() => {
        pending = verifier.verify(token as string);
      });
      assert.ok(pending instanceof Promise);
      await assert.rejects(
        pending,
        (err: unknown) => err instanceof AuthError && err.code === code,
      );
    }
  });

  test("a payload that is not JSON: ERR_TOKEN_MALFORMED", async () => {
    const { kp, verifier } = await setup();
    for (const payload of [
      `not json ${secretClaims.sub}`,
      `{"sub":"${secretClaims.sub}"`,
      `["${secretClaims.sub}"]`,
      "null",
    ]) {
      // Properly signed, so it is the payload that is refused, not the signature.
      const token = await signRaw(kp.privateKey, { alg: "ES256" }, payload);
      await refused(verifier, token, "ERR_TOKEN_MALFORMED");
    }
  });

  // errors.ts: ERR_TOKEN_MALFORMED is "not a compact JWS, or its header or
  // payload do not decode". A payload that does not decode gets it; a header
  // that does not decode must get it too.
  test("a header that does not decode: ERR_TOKEN_MALFORMED", async () => {
    const payload = { iss: issuer, aud: audience, exp: now + 60, ...secretClaims };
    const verifier = createVerifier({ secret: secret64, algorithms: ["HS256"] });
    for (const header of ["not json", '"HS256"', "[1]", '{"alg":"HS256"']) {
      const token = hmacSign(secret64, header, JSON.stringify(payload));
      await refused(verifier, token, "ERR_TOKEN_MALFORMED");
    }
  });

  test("an unknown critical header: ERR_TOKEN_MALFORMED", async () => {
    const payload = { iss: issuer, aud: audience, exp: now + 60, ...secretClaims };
    const verifier = createVerifier({ secret: secret64, algorithms: ["HS256"] });
    const header = { alg: "HS256", crit: ["x-must-understand"], "x-must-understand": true };
    const token = hmacSign(secret64, JSON.stringify(header), JSON.stringify(payload));
    await refused(verifier, token, "ERR_TOKEN_MALFORMED");
    // The same token without crit verifies: it is crit that is refused.
    const plain = hmacSign(secret64, JSON.stringify({ alg: "HS256" }), JSON.stringify(payload));
    assert.equal((await verifier.verify(plain)).sub, secretClaims.sub);
  });

  test("not a compact JWS at all: ERR_TOKEN_MALFORMED", async () => {
    const { verifier } = await setup();
    for (const token of ["", "a.b", "a.b.c.d", "not a token", "a.b.c"]) {
      const err = await assertRefused(verifier.verify(token), "ERR_TOKEN_MALFORMED");
      assert.ok(err instanceof AuthError);
    }
  });

  test("verify never rejects with anything but an AuthError", async () => {
    const { verifier } = await setup();
    for (const input of [undefined, null, 42, {}, ["a.b.c"]]) {
      await assertRefused(verifier.verify(input as unknown as string), "ERR_TOKEN_MALFORMED");
    }
  });

  test("a token over maxTokenSize: ERR_TOKEN_TOO_LARGE, before anything is decoded", async () => {
    const { kp, sign } = await setup();
    const token = await sign();
    const exact = createVerifier({
      publicKey: kp.publicKey,
      algorithms: ["ES256"],
      maxTokenSize: token.length,
    });
    assert.equal((await exact.verify(token)).sub, secretClaims.sub);
    const smaller = createVerifier({
      publicKey: kp.publicKey,
      algorithms: ["ES256"],
      maxTokenSize: token.length - 1,
    });
    await refused(smaller, token, "ERR_TOKEN_TOO_LARGE");
    // The default cap; the oversized value is not even a token.
    await refused(exact, `a.b.${"c".repeat(1024 * 1024)}`, "ERR_TOKEN_TOO_LARGE");
    assert.equal(createVerifier({ secret: secret64 }).maxTokenSize, 8192);
  });
});

describe("the verified-token cache", () => {
  /** Moves the mocked clock, runs `body`, and puts the clock back. */
  async function later(seconds: number, body: () => Promise<void>) {
    setClock(seconds);
    try {
      await body();
    } finally {
      setClock(0);
    }
  }

  test("a cached token is refused once it expires", async () => {
    const { verifier, sign } = await setup();
    const token = await sign({ exp: now + 60 });
    assert.equal((await verifier.verify(token)).exp, now + 60);
    await later(64, async () => {
      assert.equal((await verifier.verify(token)).exp, now + 60);
    });
    await later(65, async () => {
      await refused(verifier, token, "ERR_TOKEN_EXPIRED");
    });
  });

  test("without the cache, maxTokenAge is checked on every call", async () => {
    const { verifier, sign } = await setup({ maxTokenAge: "15m", cache: false });
    const token = await sign({ exp: now + 3600 });
    assert.ok(await verifier.verify(token));
    await later(20 * 60, async () => {
      await refused(verifier, token, "ERR_TOKEN_TOO_OLD");
    });
  });

  // The cache keeps a token until its exp; maxTokenAge can end its life sooner.
  test("a cached token is refused once it is older than maxTokenAge", async () => {
    const { verifier, sign } = await setup({ maxTokenAge: "15m" });
    const token = await sign({ exp: now + 3600 });
    assert.ok(await verifier.verify(token));
    await later(20 * 60, async () => {
      await refused(verifier, token, "ERR_TOKEN_TOO_OLD");
    });
  });
});

describe("revocation and lifetime", () => {
  test("isRevoked returning true: ERR_TOKEN_REVOKED, also for a cached token", async () => {
    const revoked = new Set<string>();
    const { verifier, sign } = await setup({
      isRevoked: (claims) => revoked.has(claims.jti as string),
    });
    const token = await sign({ jti: "jti-revoked-0001" });
    assert.ok(await verifier.verify(token));
    revoked.add("jti-revoked-0001");
    await refused(verifier, token, "ERR_TOKEN_REVOKED");
  });

  test("an ES256 token's second spelling (s → n − s) verifies too: a denylist keys on jti", async () => {
    const revoked = new Set<string>();
    const { verifier, sign } = await setup({
      isRevoked: (claims) => revoked.has(claims.jti as string),
    });
    const token = await sign({ jti: "jti-twin-0001" });
    const twin = withNegatedS(token);
    assert.notEqual(twin, token);
    // The same claims under another string: a denylist of token strings would miss the twin.
    assert.deepEqual(await verifier.verify(twin), await verifier.verify(token));
    revoked.add("jti-twin-0001");
    await refused(verifier, token, "ERR_TOKEN_REVOKED");
    await refused(verifier, twin, "ERR_TOKEN_REVOKED");
  });

  test("isRevoked throwing: ERR_REVOCATION_UNAVAILABLE, without its message", async () => {
    const { verifier, sign } = await setup({
      isRevoked: (claims) => {
        throw new Error(`revocation store down while checking ${String(claims.sub)}`);
      },
    });
    const token = await sign();
    const err = await refused(verifier, token, "ERR_REVOCATION_UNAVAILABLE");
    assert.equal(err.message, "authentication unavailable");
    assert.equal(err.challenge, "none");
  });

  test("revocations: asked on every call, cache hits included, beside isRevoked", async () => {
    const byList = new Set<string>();
    const byHook = new Set<string>();
    const { verifier, sign } = await setup({
      revocations: { isRevoked: (claims) => byList.has(claims.jti as string) },
      isRevoked: (claims) => byHook.has(claims.jti as string),
    });
    const listed = await sign({ jti: "jti-listed-0001" });
    const hooked = await sign({ jti: "jti-hooked-0001" });
    assert.ok(await verifier.verify(listed));
    assert.ok(await verifier.verify(listed));
    assert.ok(await verifier.verify(hooked));
    byList.add("jti-listed-0001");
    byHook.add("jti-hooked-0001");
    await refused(verifier, listed, "ERR_TOKEN_REVOKED");
    await refused(verifier, hooked, "ERR_TOKEN_REVOKED");
  });

  test("revocations throwing (the list cannot be trusted): ERR_REVOCATION_UNAVAILABLE", async () => {
    const { verifier, sign } = await setup({
      revocations: {
        isRevoked: () => {
          throw new Error("revocation list out of touch");
        },
      },
    });
    const err = await refused(verifier, await sign(), "ERR_REVOCATION_UNAVAILABLE");
    assert.equal(err.message, "authentication unavailable");
    assert.equal(err.unavailable, true);
  });

  test("revocations without isRevoked: a TypeError naming the fix", async () => {
    await assert.rejects(
      setup({ revocations: {} as never }),
      new TypeError(
        "createVerifier: revocations must be an object with isRevoked(claims), e.g. redisRevocations({ client })",
      ),
    );
  });

  test("a lifetime over maxLifetime: ERR_LIFETIME_TOO_LONG", async () => {
    const { verifier, sign } = await setup({ maxLifetime: "1h" });
    assert.ok(await verifier.verify(await sign({ iat: now, exp: now + 3600 })));
    await refused(verifier, await sign({ iat: now, exp: now + 3601 }), "ERR_LIFETIME_TOO_LONG");
    await refused(verifier, await sign({ iat: undefined, exp: now + 60 }), "ERR_CLAIM_MISSING");
  });
});
