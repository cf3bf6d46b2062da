// Several issuers side by side: each token is checked with the keys,
// algorithms and audience of the issuer its `iss` names, and of no other.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import {
  type AuthErrorCode,
  createJwtAuth,
  type DeniedEvent,
  type JwtAuthOptions,
} from "../../src/index.js";
import { audience, generateTestKey, type MintOptions, mint } from "../helpers/fixtures.js";
import {
  type CallKind,
  call,
  gateAndInterceptor,
  methodOf,
  type TestServer,
  type TransportKind,
  transports,
  useServer,
} from "../helpers/server.js";

const issuerA = "https://a.issuer.test/";
const issuerB = "https://b.issuer.test/";
const issuerC = "https://c.issuer.test/";
const audienceB = "b-only-api";

const keyA = await generateTestKey("ES256", "a-1");
const keyB = await generateTestKey("RS256", "b-1");
const secretC = randomBytes(32);
const hs256C = { alg: "HS256", secret: secretC };
// Keys no issuer knows: one reuses A's kid, one has its own.
const impostorSameKid = await generateTestKey("ES256", keyA.kid);
const impostorOwnKid = await generateTestKey("ES256", "x-1");
const impostorRsa = await generateTestKey("RS256", "x-2");

/** A: a local JWKS (its JWK names ES256); B: one PEM key for RS256, its own audience; C: a secret. */
const options: JwtAuthOptions = {
  audience,
  issuers: [
    { issuer: issuerA, jwks: { keys: [keyA.publicJwk] } },
    { issuer: issuerB, publicKey: keyB.publicPem, algorithms: ["RS256"], audience: audienceB },
    { issuer: issuerC, secret: secretC },
  ],
};

type Signer = Parameters<typeof mint>[0];
const token = (key: Signer, claims: NonNullable<MintOptions["claims"]>, omit: string[] = []) =>
  mint(key, { claims: { sub: `sub-of-${String(claims.iss)}`, ...claims }, omit });

const accepted: { name: string; token: () => Promise<string>; iss: string }[] = [
  { name: "A (ES256, JWKS)", iss: issuerA, token: () => token(keyA, { iss: issuerA }) },
  {
    name: "B (RS256, PEM, its own audience)",
    iss: issuerB,
    token: () => token(keyB, { iss: issuerB, aud: audienceB }),
  },
  {
    name: "B with an audience list",
    iss: issuerB,
    token: () => token(keyB, { iss: issuerB, aud: ["elsewhere", audienceB] }),
  },
  { name: "C (HS256, secret)", iss: issuerC, token: () => token(hs256C, { iss: issuerC }) },
];

const refused: { name: string; token: () => Promise<string>; reason: AuthErrorCode }[] = [
  {
    // A's allowlist is its JWK's alg, ES256; the alg is checked before any key
    // is looked up, so B's key is never even considered for A's tokens.
    name: "claims A, signed with B's RSA key",
    token: () => token(keyB, { iss: issuerA }),
    reason: "ERR_ALGORITHM_NOT_ALLOWED",
  },
  {
    name: "claims B, signed with A's EC key",
    token: () => token(keyA, { iss: issuerB, aud: audienceB }),
    reason: "ERR_ALGORITHM_NOT_ALLOWED",
  },
  {
    name: "claims A, HS256 with C's secret",
    token: () => token(hs256C, { iss: issuerA }),
    reason: "ERR_ALGORITHM_NOT_ALLOWED",
  },
  {
    name: "claims C, signed with A's EC key",
    token: () => token(keyA, { iss: issuerC }),
    reason: "ERR_ALGORITHM_NOT_ALLOWED",
  },
  {
    name: "claims A, ES256 with A's kid but another key",
    token: () => token(impostorSameKid, { iss: issuerA }),
    reason: "ERR_SIGNATURE_INVALID",
  },
  {
    name: "claims A, ES256 with a kid A does not have",
    token: () => token(impostorOwnKid, { iss: issuerA }),
    reason: "ERR_KEY_NOT_FOUND",
  },
  {
    name: "claims B, RS256 with another RSA key",
    token: () => token(impostorRsa, { iss: issuerB, aud: audienceB }),
    reason: "ERR_SIGNATURE_INVALID",
  },
  {
    name: "claims C, HS256 with another secret",
    token: () => token({ alg: "HS256", secret: randomBytes(32) }, { iss: issuerC }),
    reason: "ERR_SIGNATURE_INVALID",
  },
  {
    name: "an issuer nobody configured",
    token: () => token(keyA, { iss: "https://unknown.issuer.test/" }),
    reason: "ERR_ISSUER_INVALID",
  },
  {
    name: "an iss that only differs by a trailing slash",
    token: () => token(keyA, { iss: issuerA.slice(0, -1) }),
    reason: "ERR_ISSUER_INVALID",
  },
  {
    name: "an iss that is not a string",
    token: () => token(keyA, { iss: 42 as unknown as string }),
    reason: "ERR_ISSUER_INVALID",
  },
  { name: "no iss", token: () => token(keyA, {}, ["iss"]), reason: "ERR_CLAIM_MISSING" },
  {
    name: "A with B's audience (the default audience holds for A)",
    token: () => token(keyA, { iss: issuerA, aud: audienceB }),
    reason: "ERR_AUDIENCE_INVALID",
  },
  {
    name: "B with the default audience (B's own wins)",
    token: () => token(keyB, { iss: issuerB, aud: audience }),
    reason: "ERR_AUDIENCE_INVALID",
  },
  {
    name: "C with B's audience",
    token: () => token(hs256C, { iss: issuerC, aud: audienceB }),
    reason: "ERR_AUDIENCE_INVALID",
  },
];

const kinds: CallKind[] = ["unary", "server-streaming"];

async function assertRefused(
  server: TestServer,
  transport: TransportKind,
  kind: CallKind,
  denied: DeniedEvent[],
  refusal: (typeof refused)[number],
) {
  const what = `${refusal.name} (${transport.name}, ${kind})`;
  const before = server.calls.length;
  denied.length = 0;
  const outcome = await call(server.client(transport), kind, `Bearer ${await refusal.token()}`);
  assert.equal(outcome.ok, false, `${what}: let through`);
  if (outcome.ok) return;
  assert.equal(outcome.error.code, Code.PermissionDenied, what);
  assert.equal(outcome.error.rawMessage, "invalid token", what);
  assert.equal(
    outcome.error.metadata.get("www-authenticate"),
    'Bearer error="invalid_token"',
    what,
  );
  assert.deepEqual(
    denied.map((e) => [e.reason, e.method, e.protocol]),
    [[refusal.reason, `demo.v1.DemoService/${methodOf[kind]}`, transport.protocol]],
    what,
  );
  assert.equal(server.calls.length, before, `${what}: the handler ran`);
}

describe("issuers: A (JWKS, ES256), B (PEM, RS256), C (secret, HS256)", () => {
  const denied: DeniedEvent[] = [];
  const server = useServer(() =>
    gateAndInterceptor({ ...options, onDenied: (e) => denied.push(e) }),
  );

  for (const transport of transports) {
    for (const kind of kinds) {
      test(`${transport.name}, ${kind}: each issuer's own tokens verify`, async () => {
        denied.length = 0;
        for (const { name, token, iss } of accepted) {
          const before = server().calls.length;
          const outcome = await call(server().client(transport), kind, `Bearer ${await token()}`);
          assert.deepEqual(outcome, { ok: true, subject: `sub-of-${iss}` }, name);
          const seen = server().calls.slice(before);
          assert.equal(seen.length, 1, name);
          assert.equal(seen[0]?.claims?.iss, iss, name);
        }
        assert.deepEqual(denied, []);
      });

      test(`${transport.name}, ${kind}: a token is judged only by the issuer it names`, async () => {
        for (const refusal of refused) {
          await assertRefused(server(), transport, kind, denied, refusal);
        }
      });
    }
  }
});

describe("issuers: an entry's options left undefined inherit the top-level policy", () => {
  // As an entry reads them from environment variables that are not set.
  const unset = undefined as unknown as string;
  const denied: DeniedEvent[] = [];
  const server = useServer(() =>
    gateAndInterceptor({
      audience,
      typ: "at+jwt",
      profile: "rfc9068",
      requiredClaims: ["tenant"],
      maxLifetime: 3600,
      maxTokenAge: "1h",
      issuers: [
        {
          issuer: issuerC,
          secret: secretC,
          audience: unset,
          typ: unset,
          profile: unset as "rfc9068",
          requiredClaims: unset as unknown as string[],
          maxLifetime: unset as unknown as number,
          maxTokenAge: unset as unknown as number,
        },
      ],
      onDenied: (e) => denied.push(e),
    }),
  );
  const now = Math.floor(Date.now() / 1000);
  const good = { iss: issuerC, client_id: "app", jti: "j-1", tenant: "t-1" };
  const atJwt = (claims: Record<string, unknown>, omit: string[] = []) =>
    mint(hs256C, {
      claims: { sub: `sub-of-${issuerC}`, ...good, ...claims },
      omit,
      header: { typ: "at+jwt" },
    });
  const inherited: (typeof refused)[number][] = [
    {
      name: "a foreign aud",
      token: () => atJwt({ aud: "other-api" }),
      reason: "ERR_AUDIENCE_INVALID",
    },
    {
      name: "typ JWT",
      token: () => mint(hs256C, { claims: { ...good, sub: "x" } }),
      reason: "ERR_TYPE_INVALID",
    },
    {
      name: "a lifetime of 10^8 s",
      token: () => atJwt({ iat: now, exp: now + 1e8 }),
      reason: "ERR_LIFETIME_TOO_LONG",
    },
    {
      name: "issued two hours ago",
      token: () => atJwt({ iat: now - 7200, exp: now + 60 }),
      reason: "ERR_TOKEN_TOO_OLD",
    },
    { name: "no tenant", token: () => atJwt({}, ["tenant"]), reason: "ERR_CLAIM_MISSING" },
    { name: "no jti (the profile)", token: () => atJwt({}, ["jti"]), reason: "ERR_CLAIM_MISSING" },
  ];

  for (const transport of transports) {
    for (const kind of kinds) {
      test(`${transport.name}, ${kind}: each inherited check holds`, async () => {
        const outcome = await call(server().client(transport), kind, `Bearer ${await atJwt({})}`);
        assert.deepEqual(outcome, { ok: true, subject: `sub-of-${issuerC}` });
        for (const refusal of inherited) {
          await assertRefused(server(), transport, kind, denied, refusal);
        }
      });
    }
  }

  test("typ alone is inherited too", async () => {
    const auth = createJwtAuth({
      audience,
      typ: "at+jwt",
      issuers: [{ issuer: issuerC, secret: secretC, typ: unset }],
    });
    await assert.rejects(auth.verify(await token(hs256C, { iss: issuerC })), {
      code: "ERR_TYPE_INVALID",
    });
  });
});

describe("issuers: construction errors", () => {
  const entryA = { issuer: issuerA, jwks: { keys: [keyA.publicJwk] } };
  const entryC = { issuer: issuerC, secret: secretC };

  function assertTypeError(opts: JwtAuthOptions, message: RegExp) {
    assert.throws(
      () => createJwtAuth(opts),
      (err: unknown) => {
        assert.ok(err instanceof TypeError, `not a TypeError: ${String(err)}`);
        assert.match(err.message, message);
        assert.ok(!err.message.includes(secretC.toString("hex")), "the secret leaked");
        return true;
      },
    );
  }

  test("an empty list", () => {
    assertTypeError(
      { issuers: [] },
      /^createJwtAuth: issuers must be a non-empty array of \{ issuer, <key source>, \.\.\. \}$/,
    );
  });

  test("an entry without issuer names its index and the fix", () => {
    assertTypeError(
      { issuers: [entryA, { secret: secretC }] },
      /^createJwtAuth: issuers\[1\]: set `issuer` \(or `issuerUrl`\): it picks this issuer's keys$/,
    );
  });

  test("the same issuer twice, alone or inside a list", () => {
    const twice =
      /^createJwtAuth: issuers\[1\]: the issuer https:\/\/a\.issuer\.test\/ is configured twice$/;
    assertTypeError({ issuers: [entryA, { ...entryC, issuer: issuerA }] }, twice);
    assertTypeError({ issuers: [entryA, { ...entryC, issuer: [issuerC, issuerA] }] }, twice);
  });

  test("a top-level key source next to issuers", () => {
    assertTypeError(
      { secret: secretC, issuers: [entryA] },
      /^createJwtAuth: with `issuers`, give secret inside each issuer, not at the top level$/,
    );
    assertTypeError(
      { jwks: { keys: [keyA.publicJwk] }, algorithms: ["ES256"], issuers: [entryC] },
      /^createJwtAuth: with `issuers`, give jwks, algorithms inside each issuer, not at the top level$/,
    );
  });

  test("a mistake inside an entry names the entry", () => {
    assertTypeError(
      { issuers: [entryA, entryC, { issuer: issuerB, secret: "too short" }] },
      /^createJwtAuth: issuers\[2\]: secret has 9 bytes; HMAC secrets need at least 32 random bytes$/,
    );
    assertTypeError(
      { issuers: [entryA, { issuer: issuerB, publicKey: keyB.publicPem }] },
      /^createJwtAuth: issuers\[1\]: publicKey: set `algorithms`/,
    );
    assertTypeError(
      { issuers: [{ ...entryA, audience: [] }] },
      /^createJwtAuth: issuers\[0\]: audience must be a non-empty string/,
    );
  });

  test("the same options without a mistake construct fine", () => {
    assert.doesNotThrow(() => createJwtAuth(options));
    assert.doesNotThrow(() => createJwtAuth({ issuers: [entryA, entryC] }));
  });
});
