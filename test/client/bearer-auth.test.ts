import assert from "node:assert/strict";
import { createServer } from "node:http";
import { describe, test } from "node:test";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport } from "@connectrpc/connect-node";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { bearerAuth } from "../../src/client/index.js";
import { createJwtAuth, type JwtClaims } from "../../src/index.js";
import { audience, generateTestKey, issuer, mint } from "../helpers/fixtures.js";
import { call, callKinds, gateAndInterceptor, transports, useServer } from "../helpers/server.js";

const key = await generateTestKey("ES256");
const now = () => Math.floor(Date.now() / 1000);

let providers = 0;

/** A provider that mints a new token per call, counts its calls, and names each token's subject. */
function counting(claims: () => Record<string, unknown> = () => ({})) {
  const tag = `provider-${++providers}`;
  const provider = Object.assign(
    async () => {
      provider.calls++;
      return mint(key, { claims: { sub: provider.subject(provider.calls), ...claims() } });
    },
    { calls: 0, subject: (n: number) => `${tag}-fetch-${n}` },
  );
  return provider;
}

/** Records the authorization header of every call that leaves the client. */
function spy(seen: (string | null)[]): Interceptor {
  return (next) => (req) => {
    seen.push(req.header.get("authorization"));
    return next(req);
  };
}

describe("bearerAuth", () => {
  const revoked = new Set<string>();
  const server = useServer(() =>
    gateAndInterceptor({
      jwks: { keys: [key.publicJwk] },
      issuer,
      audience,
      isRevoked: (claims: JwtClaims) => revoked.has(String(claims.sub)),
    }),
  );

  for (const transport of transports) {
    describe(transport.name, () => {
      test("a static token is sent on every call kind", async () => {
        const token = await mint(key, { claims: { sub: "static" } });
        const client = server().client(transport, [bearerAuth(token)]);
        for (const kind of callKinds(transport)) {
          assert.deepEqual(await call(client, kind), { ok: true, subject: "static" }, kind);
        }
      });

      test("a provided token is reused until shortly before exp, then refreshed", async () => {
        let exp = now() + 3600;
        const provider = counting(() => ({ exp }));
        const client = server().client(transport, [bearerAuth(provider, { refreshBefore: 30 })]);
        for (const kind of callKinds(transport)) {
          assert.deepEqual(await call(client, kind), { ok: true, subject: provider.subject(1) });
        }
        assert.equal(provider.calls, 1);
        // The next token expires within the refresh margin: it is used once, then replaced.
        exp = now() + 20;
        const soon = counting(() => ({ exp }));
        const refreshing = server().client(transport, [bearerAuth(soon, { refreshBefore: 30 })]);
        await call(refreshing, "unary");
        await call(refreshing, "unary");
        assert.equal(soon.calls, 2);
      });

      test("concurrent calls share one refresh", async () => {
        const provider = counting();
        const client = server().client(transport, [bearerAuth(provider)]);
        const outcomes = await Promise.all(Array.from({ length: 20 }, () => call(client, "unary")));
        assert.ok(outcomes.every((o) => o.ok && o.subject === provider.subject(1)));
        assert.equal(provider.calls, 1);
      });

      test("a refused unary call is retried once with a fresh token", async () => {
        const provider = counting();
        const seen: (string | null)[] = [];
        const client = server().client(transport, [bearerAuth(provider), spy(seen)]);
        assert.deepEqual(await call(client, "unary"), { ok: true, subject: provider.subject(1) });
        revoked.add(provider.subject(1));
        assert.deepEqual(await call(client, "unary"), { ok: true, subject: provider.subject(2) });
        assert.equal(provider.calls, 2);
        assert.equal(seen.length, 3);
        assert.notEqual(seen[1], seen[2]);
        // Refused again: one retry only, then the error reaches the caller.
        revoked.add(provider.subject(2));
        revoked.add(provider.subject(3));
        const outcome = await call(client, "unary");
        assert.equal(outcome.ok ? undefined : outcome.error.code, Code.PermissionDenied);
        assert.equal(seen.length, 5);
      });

      test("a refused streaming call is not replayed", async () => {
        const provider = counting();
        const seen: (string | null)[] = [];
        const client = server().client(transport, [bearerAuth(provider), spy(seen)]);
        await call(client, "unary");
        revoked.add(provider.subject(1));
        const outcome = await call(client, "server-streaming");
        assert.equal(outcome.ok ? undefined : outcome.error.code, Code.PermissionDenied);
        assert.equal(seen.length, 2);
      });
    });
  }

  test("a refusal for another reason is not retried", async () => {
    const provider = counting(() => ({ scope: "" }));
    const seen: (string | null)[] = [];
    const transport = transports[0];
    assert.ok(transport);
    const client = server().client(transport, [bearerAuth(provider), spy(seen)]);
    // ListNotes needs notes:read (the demo's proto rule): insufficient_scope, not invalid_token.
    const outcome = await call(client, "server-streaming");
    assert.equal(outcome.ok ? undefined : outcome.error.code, Code.PermissionDenied);
    const challenge = outcome.ok ? null : outcome.error.metadata.get("www-authenticate");
    assert.match(challenge ?? "", /insufficient_scope/);
    assert.equal(seen.length, 1);
    assert.equal(provider.calls, 1);
  });

  describe("a refusal of the application, not of the token", () => {
    let handlerRuns = 0;
    const auth = createJwtAuth({ jwks: { keys: [key.publicJwk] }, issuer, audience });
    // The token is valid; the handler itself says no, as an application does.
    const app = useServer({
      handler: connectNodeAdapter({
        routes: (router) =>
          router.service(DemoService, {
            whoAmI() {
              handlerRuns++;
              throw new ConnectError("not your note", Code.PermissionDenied);
            },
          }),
        interceptors: [auth.interceptor],
        requestGate: auth.requestGate,
      }) as never,
    });

    for (const transport of transports) {
      test(`is not retried: ${transport.name}`, async () => {
        const provider = counting();
        handlerRuns = 0;
        const client = app().client(transport, [bearerAuth(provider)]);
        for (let i = 0; i < 3; i++) {
          const outcome = await call(client, "unary");
          assert.equal(outcome.ok ? undefined : outcome.error.code, Code.PermissionDenied);
        }
        assert.equal(handlerRuns, 3);
        assert.equal(provider.calls, 1);
      });
    }

    test("a proxy's 403 without a challenge is not retried", async () => {
      let requests = 0;
      const proxy = createServer((_req, res) => {
        requests++;
        res.writeHead(403, { "content-type": "text/plain" }).end("forbidden");
      });
      await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
      const { port } = proxy.address() as { port: number };
      const provider = counting();
      const client = createClient(
        DemoService,
        createConnectTransport({
          baseUrl: `http://127.0.0.1:${port}`,
          httpVersion: "1.1",
          interceptors: [bearerAuth(provider)],
        }),
      );
      try {
        for (let i = 0; i < 3; i++) {
          const outcome = await call(client, "unary");
          assert.equal(outcome.ok ? undefined : outcome.error.code, Code.PermissionDenied);
        }
        assert.equal(requests, 3);
        assert.equal(provider.calls, 1);
      } finally {
        proxy.close();
      }
    });
  });

  test("a provider that returns no token fails the call without a request", async () => {
    const seen: (string | null)[] = [];
    const transport = transports[0];
    assert.ok(transport);
    const client = server().client(transport, [bearerAuth(() => "", {}), spy(seen)]);
    const outcome = await call(client, "unary");
    assert.equal(outcome.ok, false);
    assert.equal(seen.length, 0);
    if (!outcome.ok) {
      assert.ok(outcome.error instanceof ConnectError);
      assert.match(outcome.error.message, /not a non-empty string/);
    }
  });

  test("option mistakes throw a TypeError", () => {
    assert.throws(() => bearerAuth(42 as unknown as string), TypeError);
    assert.throws(() => bearerAuth("a.b.c", { refreshBefore: -1 }), /refreshBefore/);
    assert.throws(() => bearerAuth("a.b.c", { failureCode: 99 as Code }), /failureCode/);
    const name = "Unauthenticated" as unknown as Code;
    assert.throws(() => bearerAuth("a.b.c", { failureCode: name }), /failureCode/);
    assert.throws(() => bearerAuth("two words"), /not a non-empty string/);
  });
});
