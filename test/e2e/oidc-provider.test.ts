// connect-jwt against a real OpenID provider (oidc-provider, in this process):
// discovery, its JWKS, its RFC 9068 access tokens from a client-credentials
// grant, and a key rotation, over every protocol and kind of call.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { decodeJwt, decodeProtectedHeader, SignJWT } from "jose";
import { createJwtAuth, type DeniedEvent, type JwtAuthOptions } from "../../src/index.js";
import {
  notesResource,
  notesScopes,
  otherResource,
  type ProviderKey,
  startOidcProvider,
  type TestOidcProvider,
} from "../helpers/oidc-provider.js";
import {
  type CallKind,
  call,
  callKinds,
  methodOf,
  type ServerAuth,
  type TestServer,
  type TransportKind,
  transports,
  useServer,
} from "../helpers/server.js";

const bearer = (token: string) => `Bearer ${token}`;
const discoveryPath = "/.well-known/openid-configuration";
const jwksPath = "/jwks";

/** Gate and interceptor of one JwtAuth, with its refusals recorded. */
function wire(options: JwtAuthOptions, denied: DeniedEvent[]): ServerAuth {
  const auth = createJwtAuth({ ...options, onDenied: (e) => denied.push(e) });
  return { interceptors: [auth.interceptor], requestGate: auth.requestGate };
}

/** Starts a provider before the tests of the enclosing describe, closes it after. */
function useProvider(): () => TestOidcProvider {
  let provider: TestOidcProvider | undefined;
  before(async () => {
    provider = await startOidcProvider();
  });
  after(() => provider?.close());
  return () => {
    if (provider === undefined) {
      throw new Error("the provider is not running");
    }
    return provider;
  };
}

/** Signs a token with one of the provider's own keys, for what the provider will not issue. */
function forge(op: TestOidcProvider, key: ProviderKey, claims: object, typ: string) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: op.issuer,
    aud: notesResource,
    sub: op.clientId,
    client_id: op.clientId,
    jti: crypto.randomUUID(),
    iat: now,
    exp: now + 300,
    ...claims,
  })
    .setProtectedHeader({ alg: "ES256", kid: key.kid, typ })
    .sign(key.privateKey);
}

async function assertAccepted(
  server: TestServer,
  transport: TransportKind,
  kind: CallKind,
  token: string,
  op: TestOidcProvider,
) {
  const before = server.calls.length;
  const outcome = await call(server.client(transport), kind, bearer(token));
  assert.deepEqual(outcome, { ok: true, subject: op.clientId }, `${transport.name} ${kind}`);
  const seen = server.calls.slice(before);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.method, methodOf[kind]);
  assert.equal(seen[0]?.claims?.sub, op.clientId);
  assert.equal(seen[0]?.claims?.client_id, op.clientId);
  assert.equal(seen[0]?.claims?.iss, op.issuer);
  assert.equal(seen[0]?.claims?.aud, notesResource);
}

async function assertRefused(
  server: TestServer,
  transport: TransportKind,
  kind: CallKind,
  token: string,
  denied: DeniedEvent[],
  reason: string,
) {
  const before = server.calls.length;
  denied.length = 0;
  const outcome = await call(server.client(transport), kind, bearer(token));
  const what = `${transport.name} ${kind}`;
  assert.equal(outcome.ok, false, `${what}: let through`);
  if (outcome.ok) return;
  assert.equal(outcome.error.code, Code.PermissionDenied, what);
  assert.equal(outcome.error.rawMessage, "invalid token", what);
  assert.equal(outcome.error.metadata.get("www-authenticate"), 'Bearer error="invalid_token"');
  assert.deepEqual(
    denied.map((e) => [e.reason, e.protocol]),
    [[reason, transport.protocol]],
    what,
  );
  assert.equal(server.calls.length, before, `${what}: the handler ran`);
}

describe("configured with only issuerUrl and audience", () => {
  const op = useProvider();
  const denied: DeniedEvent[] = [];
  const server = useServer(async () =>
    wire({ issuerUrl: op().issuer, audience: notesResource }, denied),
  );

  test("the provider publishes discovery and issues ES256 at+jwt tokens by client credentials", async () => {
    const doc = (await (await fetch(`${op().issuer}${discoveryPath}`)).json()) as {
      issuer: string;
      jwks_uri: string;
    };
    assert.equal(doc.issuer, op().issuer);
    assert.equal(doc.jwks_uri, op().jwksUri);
    const token = await op().token();
    const header = decodeProtectedHeader(token);
    assert.deepEqual(header, { alg: "ES256", typ: "at+jwt", kid: op().keys[0]?.kid });
    const claims = decodeJwt(token);
    assert.equal(claims.iss, op().issuer);
    assert.equal(claims.aud, notesResource);
    assert.equal(claims.sub, op().clientId);
    assert.equal(claims.client_id, op().clientId);
    assert.equal(claims.scope, notesScopes);
    assert.equal(typeof claims.jti, "string");
    assert.equal(typeof claims.iat, "number");
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 300);
    assert.equal(decodeJwt(await op().token({ resource: otherResource })).aud, otherResource);
  });

  for (const transport of transports) {
    for (const kind of callKinds(transport)) {
      test(`${transport.name}, ${kind}: the provider's token is accepted`, async () => {
        await assertAccepted(server(), transport, kind, await op().token(), op());
      });
    }
    test(`${transport.name}: a token for another resource is refused (audience)`, async () => {
      const token = await op().token({ resource: otherResource });
      for (const kind of callKinds(transport)) {
        await assertRefused(server(), transport, kind, token, denied, "ERR_AUDIENCE_INVALID");
      }
    });
  }

  test("discovery and the JWKS were fetched once for all those calls", () => {
    assert.equal(op().requests(discoveryPath), 2); // one is the test's own, above
    assert.equal(op().requests(jwksPath), 1);
  });

  test("an issuerUrl that differs from the provider's issuer is not trusted", async () => {
    // The provider's issuer has no trailing slash; discovery must name exactly
    // the configured one, and the tokens' iss must match it exactly.
    const auth = createJwtAuth({ issuerUrl: `${op().issuer}/`, audience: notesResource });
    await assert.rejects(auth.verify(await op().token()), { code: "ERR_ISSUER_INVALID" });
    await assert.rejects(auth.warmUp(), { code: "ERR_KEYS_UNAVAILABLE" });
  });
});

describe('profile: "rfc9068"', () => {
  const op = useProvider();
  const denied: DeniedEvent[] = [];
  const server = useServer(async () =>
    wire({ issuerUrl: op().issuer, audience: notesResource, profile: "rfc9068" }, denied),
  );

  for (const transport of transports) {
    test(`${transport.name}: the provider's tokens meet the profile`, async () => {
      for (const kind of callKinds(transport)) {
        await assertAccepted(server(), transport, kind, await op().token(), op());
      }
    });
  }

  test("the profile is enforced: typ JWT, or a missing client_id, is refused", async () => {
    // Signed with the provider's own key, so only the profile can refuse them.
    const [key] = op().keys;
    assert.ok(key !== undefined);
    const [transport] = transports;
    assert.ok(transport !== undefined);
    const atJwt = await forge(op(), key, {}, "at+jwt");
    await assertAccepted(server(), transport, "unary", atJwt, op());
    const plainJwt = await forge(op(), key, {}, "JWT");
    await assertRefused(server(), transport, "unary", plainJwt, denied, "ERR_TYPE_INVALID");
    const noClientId = await forge(op(), key, { client_id: undefined }, "at+jwt");
    await assertRefused(server(), transport, "unary", noClientId, denied, "ERR_CLAIM_MISSING");
  });
});

describe("key rotation at the provider", () => {
  const op = useProvider();
  const denied: DeniedEvent[] = [];
  const server = useServer(async () =>
    wire({ issuerUrl: op().issuer, audience: notesResource, remoteKeys: { cooldown: 0 } }, denied),
  );

  test("a token of a new key triggers one JWKS fetch; tokens of the old key still verify", async () => {
    const [transport] = transports;
    assert.ok(transport !== undefined);
    const oldKid = op().keys[0]?.kid;
    const first = await op().token();
    const unused = await op().token(); // old key, never verified before the rotation
    await assertAccepted(server(), transport, "unary", first, op());
    assert.equal(op().requests(discoveryPath), 1);
    assert.equal(op().requests(jwksPath), 1);

    const newKey = await op().rotate();
    assert.notEqual(newKey.kid, oldKid);
    assert.deepEqual(
      op().keys.map((k) => k.kid),
      [newKey.kid, oldKid],
    );
    const rotated = await op().token();
    assert.equal(decodeProtectedHeader(rotated).kid, newKey.kid);
    await assertAccepted(server(), transport, "unary", rotated, op());
    assert.equal(op().requests(jwksPath), 2, "exactly one more JWKS fetch");

    await assertAccepted(server(), transport, "unary", unused, op());
    await assertAccepted(server(), transport, "unary", first, op());
    for (const t of transports) {
      for (const kind of callKinds(t)) {
        await assertAccepted(server(), t, kind, await op().token(), op());
      }
    }
    assert.equal(op().requests(jwksPath), 2, "no fetch for keys already known");
    assert.equal(op().requests(discoveryPath), 1, "discovery is not repeated");
    assert.deepEqual(denied, []);
  });
});

describe("key rotation inside the cooldown", () => {
  const op = useProvider();

  test("with the default cooldown a new kid is refused without a fetch", async () => {
    const auth = createJwtAuth({ issuerUrl: op().issuer, audience: notesResource });
    const claims = await auth.verify(await op().token());
    assert.equal(claims.client_id, op().clientId);
    assert.equal(op().requests(jwksPath), 1);
    await op().rotate();
    await assert.rejects(auth.verify(await op().token()), { code: "ERR_KEY_NOT_FOUND" });
    assert.equal(op().requests(jwksPath), 1, "the cooldown holds");
  });
});
