import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import {
  type AuthErrorCode,
  createJwtAuth,
  type DeniedEvent,
  type JwtAuthOptions,
} from "../../src/index.js";
import {
  audience,
  generateTestKey,
  issuer,
  mint,
  unsigned,
  validClaims,
} from "../helpers/fixtures.js";
import {
  type CallKind,
  call,
  callKinds,
  gateAndInterceptor,
  methodOf,
  type ServerAuth,
  type TestServer,
  type TransportKind,
  transports,
  useServer,
} from "../helpers/server.js";

const es256 = await generateTestKey("ES256");
const rs256 = await generateTestKey("RS256");
const ed25519 = await generateTestKey("EdDSA");
const subject = "subject-7f3a9c";

const baseOptions: JwtAuthOptions = {
  jwks: { keys: [es256.publicJwk, rs256.publicJwk] },
  issuer,
  audience,
  typ: "JWT",
};

/** A refusal case: the header to send, and what the server must answer. */
interface Refusal {
  name: string;
  authorization: () => Promise<string | undefined>;
  reason: AuthErrorCode;
  message: string;
  challenge: string;
}

const bearer = (token: string) => `Bearer ${token}`;
const valid = () => mint(es256, { claims: { sub: subject } });
const past = () => Math.floor(Date.now() / 1000) - 3600;
const future = () => Math.floor(Date.now() / 1000) + 3600;

const invalidToken = 'Bearer error="invalid_token"';
const refusals: Refusal[] = [
  ["missing header", async () => undefined, "ERR_TOKEN_MISSING", "missing bearer token", "Bearer"],
  [
    "Basic scheme",
    async () => "Basic dXNlcjpwYXNz",
    "ERR_TOKEN_MISSING",
    "missing bearer token",
    "Bearer",
  ],
  [
    "Bearer alone",
    async () => "Bearer",
    "ERR_AUTHORIZATION_MALFORMED",
    "malformed authorization header",
    'Bearer error="invalid_request"',
  ],
  [
    "comma-joined values",
    async () => `${bearer(await valid())}, ${bearer(await valid())}`,
    "ERR_AUTHORIZATION_MALFORMED",
    "malformed authorization header",
    'Bearer error="invalid_request"',
  ],
  [
    "tab after the scheme",
    async () => `Bearer\t${await valid()}`,
    "ERR_AUTHORIZATION_MALFORMED",
    "malformed authorization header",
    'Bearer error="invalid_request"',
  ],
  [
    "two segments",
    async () => bearer((await valid()).split(".").slice(0, 2).join(".")),
    "ERR_TOKEN_MALFORMED",
    "invalid token",
    invalidToken,
  ],
  [
    "padding",
    async () => bearer(`${await valid()}==`),
    "ERR_TOKEN_MALFORMED",
    "invalid token",
    invalidToken,
  ],
  [
    "over the size cap",
    async () => bearer(`${"a".repeat(4000)}.${"b".repeat(4000)}.${"c".repeat(200)}`),
    "ERR_TOKEN_TOO_LARGE",
    "invalid token",
    invalidToken,
  ],
  [
    "payload not JSON",
    async () => bearer(`${(await valid()).split(".")[0]}.bm90LWpzb24.c2ln`),
    "ERR_TOKEN_MALFORMED",
    "invalid token",
    invalidToken,
  ],
  [
    "expired",
    async () => bearer(await mint(es256, { claims: { sub: subject, exp: past() } })),
    "ERR_TOKEN_EXPIRED",
    "token expired",
    invalidToken,
  ],
  [
    "not yet valid",
    async () => bearer(await mint(es256, { claims: { sub: subject, nbf: future() } })),
    "ERR_TOKEN_NOT_YET_VALID",
    "invalid token",
    invalidToken,
  ],
  [
    "issued in the future",
    async () => bearer(await mint(es256, { claims: { sub: subject, iat: future() } })),
    "ERR_TOKEN_NOT_YET_VALID",
    "invalid token",
    invalidToken,
  ],
  [
    "no exp",
    async () => bearer(await mint(es256, { claims: { sub: subject }, omit: ["exp"] })),
    "ERR_CLAIM_MISSING",
    "invalid token",
    invalidToken,
  ],
  [
    "wrong iss",
    async () => bearer(await mint(es256, { claims: { sub: subject, iss: "https://evil.test/" } })),
    "ERR_ISSUER_INVALID",
    "invalid token",
    invalidToken,
  ],
  [
    "wrong aud",
    async () => bearer(await mint(es256, { claims: { sub: subject, aud: "other-api" } })),
    "ERR_AUDIENCE_INVALID",
    "invalid token",
    invalidToken,
  ],
  [
    "wrong typ",
    async () => bearer(await mint(es256, { claims: { sub: subject }, header: { typ: "at+jwt" } })),
    "ERR_TYPE_INVALID",
    "invalid token",
    invalidToken,
  ],
  [
    "bad signature",
    async () => bearer(flipSignature(await valid())),
    "ERR_SIGNATURE_INVALID",
    "invalid token",
    invalidToken,
  ],
  [
    "alg none",
    async () => bearer(unsigned({ ...validClaims(), sub: subject })),
    "ERR_ALGORITHM_NOT_ALLOWED",
    "invalid token",
    invalidToken,
  ],
  [
    "algorithm outside the allowlist",
    async () => bearer(await mint(ed25519, { claims: { sub: subject } })),
    "ERR_ALGORITHM_NOT_ALLOWED",
    "invalid token",
    invalidToken,
  ],
  [
    "HS256 signed with the RSA public key",
    async () =>
      bearer(
        await mint(
          { alg: "HS256", secret: new TextEncoder().encode(rs256.publicPem) },
          { claims: { sub: subject } },
        ),
      ),
    "ERR_ALGORITHM_NOT_ALLOWED",
    "invalid token",
    invalidToken,
  ],
  [
    "unknown kid",
    async () =>
      bearer(await mint(es256, { claims: { sub: subject }, header: { kid: "not-a-key" } })),
    "ERR_KEY_NOT_FOUND",
    "invalid token",
    invalidToken,
  ],
].map(
  ([name, authorization, reason, message, challenge]) =>
    ({
      name,
      authorization,
      reason,
      message,
      challenge,
    }) as Refusal,
);

function flipSignature(token: string): string {
  const [header, payload, signature = ""] = token.split(".");
  const i = Math.floor(signature.length / 2);
  const flipped = signature[i] === "A" ? "B" : "A";
  return `${header}.${payload}.${signature.slice(0, i)}${flipped}${signature.slice(i + 1)}`;
}

/** The ways a user wires the auth into connectNodeAdapter. */
const wirings: { name: string; wire: (options: JwtAuthOptions) => ServerAuth }[] = [
  {
    name: "request gate and interceptor",
    wire: (o) => {
      const auth = createJwtAuth(o);
      return { interceptors: [auth.interceptor], requestGate: auth.requestGate };
    },
  },
  { name: "interceptor only", wire: (o) => ({ interceptors: [createJwtAuth(o).interceptor] }) },
  { name: "request gate only", wire: (o) => ({ requestGate: createJwtAuth(o).requestGate }) },
];

function assertNoLeak(text: string, token: string | undefined) {
  assert.ok(!text.includes(subject), "a claim value leaked");
  for (const part of token?.replace(/^\S+\s+/, "").split(/[.\s,]+/) ?? []) {
    if (part.length >= 8) {
      assert.ok(!text.includes(part), "a token segment leaked");
    }
  }
}

for (const wiring of wirings) {
  describe(`${wiring.name}:`, () => {
    const denied: DeniedEvent[] = [];
    const server = useServer(() =>
      Promise.resolve(wiring.wire({ ...baseOptions, onDenied: (e) => denied.push(e) })),
    );

    for (const transport of transports) {
      describe(transport.name, () => {
        for (const kind of callKinds(transport)) {
          test(`${kind}: a valid token reaches the handler with its claims`, async () => {
            for (const key of [es256, rs256]) {
              const before = server().calls.length;
              const token = await mint(key, { claims: { sub: subject, tenant: "t-1" } });
              const outcome = await call(server().client(transport), kind, bearer(token));
              assert.deepEqual(outcome, { ok: true, subject });
              const seen = server().calls.slice(before);
              assert.equal(seen.length, 1);
              assert.equal(seen[0]?.method, methodOf[kind]);
              assert.equal(seen[0]?.claims?.tenant, "t-1");
              assert.equal(seen[0]?.claims?.iss, issuer);
            }
          });

          test(`${kind}: every bad credential is refused before the handler`, async () => {
            for (const refusal of refusals) {
              await assertRefused(
                server(),
                refusal,
                kind,
                transport,
                denied,
                Code.PermissionDenied,
              );
            }
          });
        }
      });
    }
  });
}

async function assertRefused(
  server: TestServer,
  refusal: Refusal,
  kind: CallKind,
  transport: TransportKind,
  denied: DeniedEvent[],
  code: Code,
  track = true,
) {
  const before = server.calls.length;
  denied.length = 0;
  const authorization = await refusal.authorization();
  const outcome = await call(server.client(transport), kind, authorization);
  const what = `${refusal.name} (${kind})`;
  assert.equal(outcome.ok, false, `${what} was let through`);
  if (outcome.ok) return;
  assert.equal(outcome.error.code, code, `${what}: code`);
  assert.equal(outcome.error.rawMessage, refusal.message, `${what}: message`);
  assert.equal(
    outcome.error.metadata.get("www-authenticate"),
    refusal.challenge,
    `${what}: challenge`,
  );
  assert.equal(server.calls.length, before, `${what}: the handler ran`);
  if (track) {
    assert.deepEqual(
      denied.map((e) => [e.reason, e.method, e.protocol, e.subject]),
      // No token verified: no subject, whatever the token claimed.
      [[refusal.reason, `demo.v1.DemoService/${methodOf[kind]}`, transport.protocol, undefined]],
      `${what}: onDenied`,
    );
  }
  const wire = `${outcome.error.message} ${JSON.stringify([...outcome.error.metadata])}`;
  assertNoLeak(wire, authorization);
}

describe("failureCode: Code.Unauthenticated", () => {
  const server = useServer(() =>
    gateAndInterceptor({ ...baseOptions, failureCode: Code.Unauthenticated }),
  );
  for (const transport of transports) {
    test(`${transport.name}: refusals carry Unauthenticated, valid tokens pass`, async () => {
      for (const kind of callKinds(transport)) {
        for (const refusal of refusals.filter((r) =>
          ["missing header", "expired", "Bearer alone"].includes(r.name),
        )) {
          await assertRefused(server(), refusal, kind, transport, [], Code.Unauthenticated, false);
        }
        const outcome = await call(server().client(transport), kind, bearer(await valid()));
        assert.deepEqual(outcome, { ok: true, subject });
      }
    });
  }
});

describe("publicMethods", () => {
  const server = useServer(() =>
    gateAndInterceptor({ ...baseOptions, publicMethods: ["demo.v1.DemoService/Ping"] }),
  );
  for (const transport of transports) {
    test(`${transport.name}: no token is fine, a bad token is not, a good one gives claims`, async () => {
      const client = server().client(transport);
      const anonymous = await client.ping({ text: "hi" });
      assert.equal(anonymous.subject, "");
      assert.equal(server().calls.at(-1)?.claims, undefined);
      const signedIn = await client.ping({}, { headers: { authorization: bearer(await valid()) } });
      assert.equal(signedIn.subject, subject);
      await assert.rejects(
        client.ping({}, { headers: { authorization: bearer(flipSignature(await valid())) } }),
        (err: { code: Code }) => err.code === Code.PermissionDenied,
      );
      await assert.rejects(
        client.ping({}, { headers: { authorization: "Bearer" } }),
        (err: { code: Code }) => err.code === Code.PermissionDenied,
      );
      // The other methods are not public.
      const whoAmI = await call(client, "unary");
      assert.equal(whoAmI.ok, false);
    });
  }
});

describe("publicMethods with a service wildcard", () => {
  const server = useServer(() =>
    Promise.resolve({
      interceptors: [
        createJwtAuth({ ...baseOptions, publicMethods: ["demo.v1.DemoService/*"] }).interceptor,
      ],
    }),
  );
  for (const transport of transports) {
    test(`${transport.name}: every method answers without a token`, async () => {
      for (const kind of callKinds(transport)) {
        assert.deepEqual(await call(server().client(transport), kind), { ok: true, subject: "" });
        assert.equal(server().calls.at(-1)?.claims, undefined);
      }
    });
  }
});
