import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { createJwtAuth, getClaims, type JwtAuth, requireClaims } from "../../src/index.js";
import {
  createTestContext,
  createTestIssuer,
  type TestIssuer,
  withClaims,
} from "../../src/testing/index.js";
import { call, transports, useServer } from "../helpers/server.js";

describe("createTestIssuer", () => {
  let issuer: TestIssuer;
  let auth: JwtAuth;
  before(async () => {
    issuer = await createTestIssuer({ audience: "kit-api" });
    auth = createJwtAuth({
      issuerUrl: issuer.issuer,
      audience: "kit-api",
      remoteKeys: { cooldown: 0 },
    });
  });
  after(() => issuer.close());

  test("serves discovery and keys that connect-jwt verifies its tokens with", async () => {
    const claims = await auth.verify(await issuer.sign({ sub: "alice", tenant: "acme" }));
    assert.equal(claims.sub, "alice");
    assert.equal(claims.tenant, "acme");
    assert.equal(claims.iss, issuer.issuer);
    assert.deepEqual(issuer.requests, { discovery: 1, jwks: 1 });
  });

  test("signs expired tokens and tokens without a claim on request", async () => {
    await assert.rejects(auth.verify(await issuer.sign({}, { expiresIn: -60 })), {
      code: "ERR_TOKEN_EXPIRED",
    });
    await assert.rejects(auth.verify(await issuer.sign({}, { omit: ["exp"] })), {
      code: "ERR_CLAIM_MISSING",
    });
    await assert.rejects(auth.verify(await issuer.sign({ aud: "other" })), {
      code: "ERR_AUDIENCE_INVALID",
    });
  });

  test("rotates keys: new tokens verify after one refetch, old ones while their key is published", async () => {
    const old = await issuer.sign({ sub: "before" });
    const fetches = issuer.requests.jwks;
    await issuer.rotate();
    assert.equal(issuer.jwks.keys.length, 2);
    assert.equal((await auth.verify(await issuer.sign({ sub: "after" }))).sub, "after");
    assert.equal(issuer.requests.jwks, fetches + 1);
    assert.equal((await auth.verify(old)).sub, "before");
    await issuer.rotate({ dropOld: true });
    assert.equal(issuer.jwks.keys.length, 1);
  });

  test("closes cleanly", async () => {
    const other = await createTestIssuer({ algorithm: "RS256" });
    await other.close();
    await assert.rejects(fetch(other.jwksUrl));
  });
});

describe("createTestIssuer behind a server", () => {
  let issuer: TestIssuer;
  const server = useServer(async () => {
    issuer = await createTestIssuer({ algorithm: "EdDSA" });
    const auth = createJwtAuth({
      jwksUrl: issuer.jwksUrl,
      issuer: issuer.issuer,
      audience: issuer.audience,
    });
    return { interceptors: [auth.interceptor], requestGate: auth.requestGate };
  });
  after(() => issuer.close());

  for (const transport of transports) {
    test(`${transport.name}: its tokens pass, others do not`, async () => {
      const token = await issuer.sign({ sub: "kit-user", scope: "notes:read" });
      assert.deepEqual(await call(server().client(transport), "unary", `Bearer ${token}`), {
        ok: true,
        subject: "kit-user",
      });
      const refused = await call(server().client(transport), "unary", "Bearer a.b.c");
      assert.equal(refused.ok ? undefined : refused.error.code, Code.PermissionDenied);
    });
  }
});

describe("createTestContext and withClaims", () => {
  test("give a handler the claims without a token", () => {
    const ctx = createTestContext(DemoService.method.whoAmI, { sub: "unit", roles: ["admin"] });
    const claims = requireClaims(ctx);
    assert.equal(claims.sub, "unit");
    assert.ok(Object.isFrozen(claims) && Object.isFrozen(claims.roles));
    assert.equal(ctx.method, DemoService.method.whoAmI);
  });

  test("without claims, requireClaims refuses as on a public method called anonymously", () => {
    const ctx = createTestContext(DemoService.method.ping);
    assert.equal(getClaims(ctx), undefined);
    assert.throws(
      () => requireClaims(ctx),
      (err: unknown) => err instanceof ConnectError && err.code === Code.PermissionDenied,
    );
    assert.equal(getClaims(withClaims({ sub: "v" }))?.sub, "v");
  });
});
