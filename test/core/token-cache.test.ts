// The verified-token cache: a hit costs no signature check and hands out the
// same frozen claims, yet expiry and isRevoked still hold on every call; a
// refusal is remembered only when nothing can change it; and the caches stay
// within their bounds.
import * as assert from "node:assert/strict";
import { after, before, describe, mock, type TestContext, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { toConnectError } from "../../src/connect/connect-error.js";
import { TokenCache } from "../../src/core/token-cache.js";
import {
  type AuthError,
  type AuthErrorCode,
  createVerifier,
  type VerifierOptions,
} from "../../src/index.js";
import {
  assertRefused,
  audience,
  b64url,
  countTokenParses,
  freezeClock,
  frozenNowMs,
  issuer,
  keyPair,
  mint,
  secret64,
  secretClaims,
  tamperSignature,
} from "../helpers/fixtures.js";

// A frozen clock, so that expiry can be tested to the second.
let setTime: (seconds: number) => void;
before(() => {
  setTime = freezeClock();
});
after(() => {
  mock.timers.reset();
});

const now = frozenNowMs / 1000;
const kp = await keyPair("ES256");

function sign(claims: Record<string, unknown> = {}) {
  return mint({ alg: "ES256", privateKey: kp.privateKey }, { claims });
}

function verifierWith(options: Partial<VerifierOptions> = {}) {
  return createVerifier({
    publicKey: kp.publicKey,
    algorithms: ["ES256"],
    issuer,
    audience,
    ...options,
  } as VerifierOptions);
}

/**
 * Counts signature checks: jose verifies every signature through
 * `crypto.subtle.verify`. The spy calls the real method and is removed
 * after the test.
 */
function countSignatureChecks(t: TestContext): () => number {
  const spy = t.mock.method(globalThis.crypto.subtle, "verify");
  return () => spy.mock.callCount();
}

/**
 * Verifies a token twice and returns the claims of the second verification: a
 * token enters the cache on its second verification.
 */
async function verifyCached(verifier: ReturnType<typeof verifierWith>, token: string) {
  await verifier.verify(token);
  return verifier.verify(token);
}

describe("a hit costs no signature check", () => {
  test("the first two verifications check the signature, 100 repeats do not", async (t) => {
    const checks = countSignatureChecks(t);
    const verifier = verifierWith();
    const token = await sign();
    await verifier.verify(token);
    const first = checks();
    assert.ok(first >= 1, "the counter sees the first verification");
    await verifier.verify(token);
    assert.equal(checks(), 2 * first, "the second verification checks the signature again");
    for (let i = 0; i < 100; i++) {
      assert.equal((await verifier.verify(token)).sub, secretClaims.sub);
    }
    assert.equal(checks(), 2 * first);
  });

  test("tokens used once are not cached: 200 of them, then each again, are all verified", async (t) => {
    const checks = countSignatureChecks(t);
    // The admission table may forget a print when both of a token's slots are
    // taken (a token is then admitted a use late): one run in 250 with 200
    // tokens in the default table of 32,768 slots (simulated). In the largest
    // table, 2^20 slots, a few runs in a million: the counts below are exact.
    const verifier = verifierWith({ cache: { maxEntries: 1 << 19 } });
    const tokens = await Promise.all(
      Array.from({ length: 200 }, (_, i) => sign({ jti: `once-${i}` })),
    );
    const base = checks();
    for (const token of tokens) {
      await verifier.verify(token);
    }
    const perToken = (checks() - base) / 200;
    assert.ok(perToken >= 1);
    // Their second use admits them; a third is a hit.
    for (const token of tokens) {
      await verifier.verify(token);
    }
    assert.equal(checks(), base + 400 * perToken, "a token was cached on its first use");
    for (const token of tokens) {
      await verifier.verify(token);
    }
    assert.equal(checks(), base + 400 * perToken, "a token used twice was not cached");
  });

  test("with cache: false, every repeat checks the signature", async (t) => {
    const checks = countSignatureChecks(t);
    const verifier = verifierWith({ cache: false });
    const token = await sign();
    await verifier.verify(token);
    const first = checks();
    assert.ok(first >= 1);
    for (let i = 0; i < 100; i++) {
      await verifier.verify(token);
    }
    assert.equal(checks(), first + 100 * first);
  });

  test("a hit hands out the very claims object of the verification that cached it", async () => {
    const verifier = verifierWith();
    const token = await sign({ roles: ["admin"] });
    const first = await verifyCached(verifier, token);
    assert.ok(Object.isFrozen(first));
    assert.equal(await verifier.verify(token), first);
    assert.equal(await verifier.verify(token), first);
    // The control: without the cache each verification builds new claims.
    const uncached = verifierWith({ cache: false });
    assert.notEqual(await uncached.verify(token), await uncached.verify(token));
  });

  test("tokens are cached by their exact string, one entry each", async (t) => {
    const checks = countSignatureChecks(t);
    const verifier = verifierWith();
    const a = await sign({ jti: "token-a" });
    const b = await sign({ jti: "token-b" });
    const base = checks();
    const claimsA = await verifyCached(verifier, a);
    const perToken = (checks() - base) / 2;
    const claimsB = await verifyCached(verifier, b);
    assert.equal(checks(), base + 4 * perToken, "a second token is verified on its own");
    assert.equal(await verifier.verify(a), claimsA);
    assert.equal(await verifier.verify(b), claimsB);
    assert.equal(checks(), base + 4 * perToken);
  });
});

describe("expiry on a hit", () => {
  test("a hit within exp + tolerance is served; past it, ERR_TOKEN_EXPIRED without a signature check", async (t) => {
    const checks = countSignatureChecks(t);
    const verifier = verifierWith();
    const token = await sign({ exp: now + 60 });
    try {
      const claims = await verifyCached(verifier, token);
      const first = checks();
      setTime(64); // exp + 4 s: within the default 5 s tolerance
      assert.equal(await verifier.verify(token), claims);
      setTime(65); // exp + 5 s: expired
      await assertRefused(verifier.verify(token), "ERR_TOKEN_EXPIRED", token);
      await assertRefused(verifier.verify(token), "ERR_TOKEN_EXPIRED", token);
      assert.equal(checks(), first, "expiry cost a signature check");
    } finally {
      setTime(0);
    }
  });

  test("clockTolerance moves the boundary of a hit too", async (t) => {
    const checks = countSignatureChecks(t);
    const verifier = verifierWith({ clockTolerance: 0 });
    const token = await sign({ exp: now + 60 });
    try {
      const claims = await verifyCached(verifier, token);
      const first = checks();
      setTime(59.999);
      assert.equal(await verifier.verify(token), claims);
      setTime(60);
      await assertRefused(verifier.verify(token), "ERR_TOKEN_EXPIRED", token);
      assert.equal(checks(), first);
    } finally {
      setTime(0);
    }
  });
});

describe("isRevoked on every call, hits included", () => {
  test("it is consulted once per call, with the cached claims", async (t) => {
    const checks = countSignatureChecks(t);
    const seen: unknown[] = [];
    const verifier = verifierWith({
      isRevoked: (claims) => {
        seen.push(claims);
        return false;
      },
    });
    const token = await sign({ jti: "jti-0001" });
    const claims = await verifyCached(verifier, token);
    const first = checks();
    for (let i = 0; i < 20; i++) {
      await verifier.verify(token);
    }
    assert.equal(seen.length, 22);
    seen.shift(); // the first verification's claims, not cached
    assert.ok(seen.every((c) => c === claims));
    assert.equal(checks(), first, "the 20 repeats were hits");
  });

  test("true refuses a cached token with ERR_TOKEN_REVOKED; the refusal itself is not cached", async (t) => {
    const checks = countSignatureChecks(t);
    const revoked = new Set<string>();
    let calls = 0;
    const verifier = verifierWith({
      isRevoked: async (claims) => {
        calls++;
        return revoked.has(claims.jti as string);
      },
    });
    const token = await sign({ jti: "jti-revoked-0002" });
    const claims = await verifyCached(verifier, token);
    const first = checks();
    revoked.add("jti-revoked-0002");
    await assertRefused(verifier.verify(token), "ERR_TOKEN_REVOKED", token);
    await assertRefused(verifier.verify(token), "ERR_TOKEN_REVOKED", token);
    revoked.delete("jti-revoked-0002");
    assert.equal(await verifier.verify(token), claims, "still cached, and no longer revoked");
    assert.equal(calls, 5);
    assert.equal(checks(), first);
  });

  test("a token revoked at its first verification is not cached", async (t) => {
    const checks = countSignatureChecks(t);
    let revoke = true;
    const verifier = verifierWith({ isRevoked: () => revoke });
    const token = await sign({ jti: "jti-revoked-0003" });
    await assertRefused(verifier.verify(token), "ERR_TOKEN_REVOKED", token);
    const first = checks();
    // Refused twice: had a refusal counted as a verification, the second would cache it.
    await assertRefused(verifier.verify(token), "ERR_TOKEN_REVOKED", token);
    revoke = false;
    assert.ok(await verifier.verify(token));
    assert.equal(checks(), 3 * first, "the third verification checked the signature again");
  });

  test("throwing refuses a cached token with ERR_REVOCATION_UNAVAILABLE, mapped to Unavailable", async (t) => {
    const checks = countSignatureChecks(t);
    let failing = false;
    let calls = 0;
    const verifier = verifierWith({
      isRevoked: () => {
        calls++;
        if (failing) {
          throw new Error(`revocation store down for ${secretClaims.email}`);
        }
        return false;
      },
    });
    const token = await sign({ jti: "jti-0004" });
    const claims = await verifyCached(verifier, token);
    const first = checks();
    failing = true;
    const err: AuthError = await assertRefused(
      verifier.verify(token),
      "ERR_REVOCATION_UNAVAILABLE",
      token,
    );
    assert.equal(err.unavailable, true);
    const connectError = toConnectError(err, Code.PermissionDenied);
    assert.equal(connectError.code, Code.Unavailable);
    assert.equal(connectError.rawMessage, "authentication unavailable");
    assert.equal(connectError.metadata.get("www-authenticate"), null);
    failing = false;
    assert.equal(await verifier.verify(token), claims, "the entry survived the failed check");
    assert.equal(calls, 4);
    assert.equal(checks(), first);
  });
});

describe("refusals that a key or time decides are not remembered", () => {
  test("a bad signature refused four times is checked four times", async (t) => {
    const checks = countSignatureChecks(t);
    const verifier = verifierWith();
    const token = tamperSignature(await sign());
    await assertRefused(verifier.verify(token), "ERR_SIGNATURE_INVALID", token);
    const first = checks();
    assert.ok(first >= 1);
    for (let i = 0; i < 3; i++) {
      await assertRefused(verifier.verify(token), "ERR_SIGNATURE_INVALID", token);
    }
    assert.equal(checks(), 4 * first);
  });

  test("a token not yet valid, refused three times, verifies once its nbf has come", async (t) => {
    t.after(() => setTime(0));
    const verifier = verifierWith();
    const token = await sign({ nbf: now + 60, exp: now + 600 });
    for (let i = 0; i < 3; i++) {
      await assertRefused(verifier.verify(token), "ERR_TOKEN_NOT_YET_VALID", token);
    }
    setTime(120);
    assert.equal((await verifier.verify(token)).sub, secretClaims.sub);
  });

  test("a token refused by isRevoked after its signature verified is verified again, every time", async (t) => {
    const checks = countSignatureChecks(t);
    const verifier = verifierWith({ isRevoked: () => true });
    const token = await sign({ jti: "jti-revoked-0005" });
    await assertRefused(verifier.verify(token), "ERR_TOKEN_REVOKED", token);
    const first = checks();
    assert.ok(first >= 1);
    for (let i = 0; i < 3; i++) {
      await assertRefused(verifier.verify(token), "ERR_TOKEN_REVOKED", token);
    }
    assert.equal(checks(), 4 * first);
  });
});

/** Counts decodings of a token's payload (its header is decoded once per verifier). */
const countDecodes = (t: TestContext) => countTokenParses(t, "payload");

describe("refusals that nothing can change are remembered", async () => {
  const hs = new TextEncoder().encode(secret64);
  const lasting: [string, AuthErrorCode, () => Promise<string>][] = [
    [
      "malformed",
      "ERR_TOKEN_MALFORMED",
      async () => `${b64url('{"alg":"ES256"}')}.${b64url("not json")}.c2ln`,
    ],
    ["wrong algorithm", "ERR_ALGORITHM_NOT_ALLOWED", () => mint({ alg: "HS256", secret: hs })],
    ["expired", "ERR_TOKEN_EXPIRED", () => sign({ iat: now - 600, exp: now - 60 })],
    ["wrong issuer", "ERR_ISSUER_INVALID", () => sign({ iss: "https://other.test/" })],
    ["wrong audience", "ERR_AUDIENCE_INVALID", () => sign({ aud: "other-api" })],
    ["a missing claim", "ERR_CLAIM_MISSING", () => sign({ exp: undefined })],
    ["an invalid claim", "ERR_CLAIM_INVALID", () => sign({ exp: "tomorrow" })],
  ];
  for (const [name, code, make] of lasting) {
    test(`${name}: decoded on its first two refusals, refused by a lookup after`, async (t) => {
      const verifier = verifierWith();
      const token = await make();
      const decodes = countDecodes(t);
      await assertRefused(verifier.verify(token), code, token);
      const first = decodes();
      assert.ok(first >= 1, "the counter sees the decoding");
      await assertRefused(verifier.verify(token), code, token);
      assert.equal(decodes(), 2 * first);
      for (let i = 0; i < 20; i++) {
        await assertRefused(verifier.verify(token), code, token);
      }
      assert.equal(decodes(), 2 * first, "a remembered refusal decoded the token again");
    });
  }

  test("maxTokenAge and maxLifetime refusals are remembered too", async (t) => {
    const verifier = verifierWith({ maxTokenAge: "10m", maxLifetime: "1h" });
    const tooOld = await sign({ iat: now - 3600, exp: now + 60 });
    const tooLong = await sign({ iat: now, exp: now + 7200 });
    const decodes = countDecodes(t);
    for (let i = 0; i < 5; i++) {
      await assertRefused(verifier.verify(tooOld), "ERR_TOKEN_TOO_OLD", tooOld);
      await assertRefused(verifier.verify(tooLong), "ERR_LIFETIME_TOO_LONG", tooLong);
    }
    assert.equal(decodes(), 2 * 2, "decoded on the first two refusals of each");
  });

  test("a refused token that shares a valid token's fingerprint does not refuse it", async () => {
    const verifier = verifierWith();
    const valid = await sign({ jti: "jti-twin-0001" });
    const expired = await sign({ iat: now - 600, exp: now - 60 });
    // The expired token's header and payload with the valid token's signature:
    // the same last characters (the caches' fingerprint), refused for its
    // claims before any signature check.
    const twin = `${expired.slice(0, expired.lastIndexOf("."))}${valid.slice(valid.lastIndexOf("."))}`;
    for (let i = 0; i < 3; i++) {
      await assertRefused(verifier.verify(twin), "ERR_TOKEN_EXPIRED", twin);
    }
    for (let i = 0; i < 3; i++) {
      assert.equal((await verifier.verify(valid)).jti, "jti-twin-0001");
    }
    await assertRefused(verifier.verify(twin), "ERR_TOKEN_EXPIRED", twin);
  });

  test("with maxRefusals: 0, or cache: false, every refusal decodes the token", async (t) => {
    const token = await sign({ iss: "https://other.test/" });
    for (const cache of [{ maxRefusals: 0 }, false] as const) {
      const verifier = verifierWith({ cache });
      const decodes = countDecodes(t);
      for (let i = 0; i < 5; i++) {
        await assertRefused(verifier.verify(token), "ERR_ISSUER_INVALID", token);
      }
      assert.equal(decodes(), 5, `cache: ${JSON.stringify(cache)}`);
      t.mock.restoreAll();
    }
  });

  test("maxRefusals bounds them: of 100 refused tokens, the newest 10 are remembered", async (t) => {
    const verifier = verifierWith({ cache: { maxRefusals: 10 } });
    const tokens = await Promise.all(
      Array.from({ length: 100 }, (_, i) => sign({ iss: `https://other-${i}.test/` })),
    );
    for (const token of tokens) {
      await assertRefused(verifier.verify(token), "ERR_ISSUER_INVALID");
      await assertRefused(verifier.verify(token), "ERR_ISSUER_INVALID");
    }
    const decodes = countDecodes(t);
    for (const token of tokens.slice(90)) {
      await assertRefused(verifier.verify(token), "ERR_ISSUER_INVALID");
    }
    assert.equal(decodes(), 0, "the newest 10 were not all remembered");
    for (const token of tokens.slice(0, 90)) {
      await assertRefused(verifier.verify(token), "ERR_ISSUER_INVALID");
    }
    assert.equal(decodes(), 90, "an evicted refusal was answered from memory");
  });

  test("maxRefusals must be a whole number >= 0", () => {
    for (const maxRefusals of [-1, 1.5, Number.NaN]) {
      assert.throws(() => verifierWith({ cache: { maxRefusals } }), {
        name: "TypeError",
        message: /cache\.maxRefusals must be a whole number >= 0/,
      });
    }
  });
});

describe("TokenCache stays within its bounds", () => {
  const claims = Object.freeze({ sub: "s" });
  const exp = now + 3600;
  /** A fake token of fixed length, distinct for each `i`. */
  const fake = (i: number) => `h.p.${String(i).padStart(12, "0")}`;
  /** The estimated bytes of one entry of a fake token. */
  function entryBytes() {
    const one = new TokenCache();
    one.insert(fake(0), claims, exp);
    return one.estimatedBytes;
  }

  test("maxEntries 1000 after 100,000 distinct tokens: 1000 entries, the newest, bytes within maxBytes", () => {
    const cache = new TokenCache({ maxEntries: 1000 });
    for (let i = 0; i < 100_000; i++) {
      cache.insert(fake(i), claims, exp);
      assert.ok(cache.size <= 1000);
    }
    assert.equal(cache.size, 1000);
    assert.ok(cache.estimatedBytes <= 16 * 1024 * 1024, "within the default maxBytes");
    assert.equal(cache.estimatedBytes, 1000 * entryBytes(), "the byte count matches the entries");
    assert.equal(cache.get(fake(99_000), now, 5), claims);
    assert.equal(cache.get(fake(98_999), now, 5), undefined);
  });

  test("a small maxBytes bounds the size by bytes", () => {
    const per = entryBytes();
    const maxBytes = 10 * per + Math.floor(per / 2);
    const cache = new TokenCache({ maxEntries: 1000, maxBytes });
    for (let i = 0; i < 10_000; i++) {
      cache.insert(fake(i), claims, exp);
      assert.ok(cache.estimatedBytes <= maxBytes);
    }
    assert.equal(cache.size, 10);
    assert.equal(cache.estimatedBytes, 10 * per);
  });

  test("tokens of mixed lengths never push the bytes past maxBytes", () => {
    const maxBytes = 64 * 1024;
    const cache = new TokenCache({ maxBytes });
    let seed = 1;
    const random = () => {
      seed = (seed * 48271) % 2147483647;
      return seed / 2147483647;
    };
    for (let i = 0; i < 20_000; i++) {
      cache.insert(`${i}.${"x".repeat(Math.floor(random() * 8000))}`, claims, exp);
      assert.ok(cache.estimatedBytes <= maxBytes, `${cache.estimatedBytes} bytes`);
    }
    assert.ok(cache.size >= 1);
  });

  test("a token larger than maxBytes is not cached, and evicts nothing", () => {
    const per = entryBytes();
    const cache = new TokenCache({ maxBytes: 4 * per });
    cache.insert(fake(1), claims, exp);
    cache.insert(`h.p.${"x".repeat(4 * per)}`, claims, exp);
    assert.equal(cache.size, 1);
    assert.equal(cache.get(fake(1), now, 5), claims);
  });

  test("least recently used goes first: an entry read lately survives", () => {
    const cache = new TokenCache({ maxEntries: 1000 });
    for (let i = 0; i < 1000; i++) {
      cache.insert(fake(i), claims, exp);
    }
    assert.equal(cache.get(fake(0), now, 5), claims);
    cache.insert(fake(1000), claims, exp);
    assert.equal(cache.size, 1000);
    assert.equal(cache.get(fake(0), now, 5), claims, "the entry just read was evicted");
    assert.equal(cache.get(fake(1), now, 5), undefined, "the oldest unread entry survived");
  });

  test("setting a token again replaces its entry without counting it twice", () => {
    const cache = new TokenCache();
    cache.insert(fake(1), claims, exp);
    const once = cache.estimatedBytes;
    const newer = Object.freeze({ sub: "t" });
    cache.insert(fake(1), newer, exp);
    assert.equal(cache.size, 1);
    assert.equal(cache.estimatedBytes, once);
    assert.equal(cache.get(fake(1), now, 5), newer);
  });

  test("an expired entry is reported and dropped, bytes with it", () => {
    const cache = new TokenCache();
    cache.insert(fake(1), claims, now + 10);
    cache.insert(fake(2), claims, exp);
    const both = cache.estimatedBytes;
    assert.equal(cache.get(fake(1), now + 15, 5), "expired");
    assert.equal(cache.size, 1);
    assert.equal(cache.estimatedBytes, both / 2);
    assert.equal(cache.get(fake(1), now + 15, 5), undefined);
  });

  test("maxEntries 0 keeps nothing", () => {
    const cache = new TokenCache({ maxEntries: 0 });
    cache.insert(fake(1), claims, exp);
    assert.equal(cache.size, 0);
    assert.equal(cache.estimatedBytes, 0);
  });
});

describe("the bounds hold through createVerifier", () => {
  test("cache: { maxEntries: 100 } after 1,000 distinct tokens keeps the newest 100", async (t) => {
    // The verifier does not expose its cache; spy on TokenCache to find it.
    const offer = t.mock.method(TokenCache.prototype, "admitOnSecondSight");
    const checks = countSignatureChecks(t);
    const verifier = verifierWith({ cache: { maxEntries: 100 } });
    const tokens: string[] = [];
    for (let i = 0; i < 1000; i++) {
      tokens.push(await sign({ jti: `jti-${i}` }));
    }
    let cache: TokenCache | undefined;
    let largest = 0;
    for (const token of tokens) {
      await verifyCached(verifier, token);
      cache ??= offer.mock.calls[0]?.this as TokenCache | undefined;
      largest = Math.max(largest, cache?.size ?? Number.POSITIVE_INFINITY);
    }
    assert.ok(cache instanceof TokenCache);
    // Each token offered twice; entered on the second offer.
    assert.equal(offer.mock.calls.length, 2000);
    assert.equal(offer.mock.calls.filter((c) => c.result === true).length, 1000);
    assert.ok(
      offer.mock.calls.every((c) => c.this === cache),
      "one cache for the verifier",
    );
    assert.equal(largest, 100);
    assert.equal(cache.size, 100);

    // The same, seen from outside: the newest 100 are hits, the other 900 are not.
    const perToken = checks() / 2000;
    assert.ok(perToken >= 1);
    const base = checks();
    for (const token of tokens.slice(900)) {
      await verifier.verify(token);
    }
    assert.equal(checks(), base, "the newest 100 tokens were not all cached");
    for (const token of tokens.slice(0, 900)) {
      await verifier.verify(token);
    }
    assert.equal(checks(), base + 900 * perToken, "an evicted token was served from the cache");
    assert.equal(cache.size, 100);
  });
});

describe("maxTtl", () => {
  test("an entry is verified afresh after maxTtl, however far its exp", (t) => {
    setTime(0);
    t.after(() => setTime(0));
    const cache = new TokenCache({ maxTtl: 60 });
    const claims = Object.freeze({ sub: "a" });
    cache.insert("token", claims, now + 3600);
    setTime(59);
    assert.equal(cache.get("token", nowSecondsAt(59), 0), claims);
    setTime(61);
    assert.equal(cache.get("token", nowSecondsAt(61), 0), undefined);
    assert.equal(cache.size, 0);
  });
});

function nowSecondsAt(offset: number): number {
  return now + offset;
}

describe("admission: a token enters on its second sight", () => {
  const claims = Object.freeze({ sub: "s" });
  const exp = now + 3600;
  const token = (i: number) => `h.p.signature-${String(i).padStart(8, "0")}`;

  test("the first sight records, the second caches", () => {
    const cache = new TokenCache();
    assert.equal(cache.admitOnSecondSight(token(1), claims, exp), false);
    assert.equal(cache.get(token(1), now, 5), undefined);
    assert.equal(cache.admitOnSecondSight(token(1), claims, exp), true);
    assert.equal(cache.get(token(1), now, 5), claims);
  });

  test("100,000 tokens offered once leave the cache (all but empty); offered again soon, they enter", () => {
    const cache = new TokenCache({ maxEntries: 1000 });
    let early = 0;
    for (let i = 0; i < 100_000; i++) {
      early += cache.admitOnSecondSight(token(i), claims, exp) ? 1 : 0;
    }
    // Only a fingerprint shared with a token offered shortly before lets one in early.
    assert.ok(early <= 5, `${early} tokens entered on their first offer`);
    assert.equal(cache.size, early);
    const sizeAfterFirstOffers = cache.size;
    // The last ones' fingerprints are still in the table.
    let admitted = 0;
    for (let i = 99_900; i < 100_000; i++) {
      admitted += cache.admitOnSecondSight(token(i), claims, exp) ? 1 : 0;
    }
    assert.ok(admitted >= 90, `${admitted} of the last 100 entered on their second offer`);
    assert.ok(cache.size >= admitted && cache.size <= sizeAfterFirstOffers + admitted);
  });

  test("two tokens with one fingerprint never share an entry", () => {
    // The fingerprint reads the last 16 characters; these tokens differ before them.
    const tail = ".0123456789abcdefghij";
    const a = `header.payload-a${tail}`;
    const b = `header.payload-b${tail}`;
    const claimsA = Object.freeze({ sub: "a" });
    const claimsB = Object.freeze({ sub: "b" });
    const cache = new TokenCache();
    cache.insert(a, claimsA, exp);
    assert.equal(cache.get(b, now, 5), undefined, "b was served a's claims");
    assert.equal(cache.get(a, now, 5), claimsA);
    // Offered twice, b enters, and takes the place of a.
    cache.admitOnSecondSight(b, claimsB, exp);
    cache.admitOnSecondSight(b, claimsB, exp);
    assert.equal(cache.get(b, now, 5), claimsB);
    assert.equal(cache.get(a, now, 5), undefined, "a was served b's claims");
    assert.equal(cache.size, 1);
  });

  test("maxEntries 0 admits nothing", () => {
    const cache = new TokenCache({ maxEntries: 0 });
    for (let i = 0; i < 3; i++) {
      cache.admitOnSecondSight(token(1), claims, exp);
    }
    assert.equal(cache.size, 0);
  });
});
