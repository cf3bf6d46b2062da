// The telemetry option with a Telemetry of our own: what the request path
// tells it, once per call, and that an observer that fails changes nothing.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import {
  type AuthenticationEvent,
  createJwtAuth,
  createVerifier,
  type KeyFetch,
  type Telemetry,
} from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { call, transports, useServer } from "../helpers/server.js";

/** A Telemetry that keeps what it is told. */
function recording() {
  const events: AuthenticationEvent[] = [];
  const lookups: boolean[] = [];
  const fetches: { url: string; error: string | undefined }[] = [];
  const telemetry: Telemetry = {
    authenticated: (event) => events.push(event),
    cacheLookup: (hit) => lookups.push(hit),
    keyFetch: (url) => ({
      end: (error) => fetches.push({ url: url.href, error: error?.message }),
    }),
  };
  return { telemetry, events, lookups, fetches };
}

/** A Telemetry whose every method throws, and whose key fetches cannot end. */
const failing: Telemetry = {
  authenticated() {
    throw new Error("authenticated failed");
  },
  cacheLookup() {
    throw new Error("cacheLookup failed");
  },
  keyFetch: () => ({ end: "not a function" }) as unknown as KeyFetch,
};

describe("the telemetry option", () => {
  let issuer: TestIssuer;
  before(async () => {
    issuer = await createTestIssuer();
  });
  after(() => issuer.close());
  const options = () => ({
    issuerUrl: issuer.issuer,
    audience: issuer.audience,
    publicMethods: ["demo.v1.DemoService/Ping"],
  });

  for (const wiring of ["gate and interceptor", "interceptor alone"] as const) {
    describe(`with the ${wiring}`, () => {
      const seen = recording();
      const server = useServer(() => {
        const auth = createJwtAuth({ ...options(), telemetry: seen.telemetry });
        return wiring === "interceptor alone"
          ? { interceptors: [auth.interceptor] }
          : { interceptors: [auth.interceptor], requestGate: auth.requestGate };
      });

      test("one event per call, on every transport, and every key fetch", async () => {
        const token = await issuer.sign({ sub: "alice" });
        for (const transport of transports) {
          const client = server().client(transport);
          assert.equal((await call(client, "unary", `Bearer ${token}`)).ok, true);
          assert.equal((await call(client, "server-streaming", "Bearer x.y.z")).ok, false);
        }
        assert.deepEqual(
          seen.events.map(({ seconds, ...rest }) => {
            assert.ok(Number.isFinite(seconds) && seconds >= 0);
            return rest;
          }),
          transports.flatMap((t) => [
            {
              outcome: "admitted",
              reason: undefined,
              service: "demo.v1.DemoService",
              method: "WhoAmI",
              protocol: t.protocol,
              subject: "alice",
            },
            {
              outcome: "refused",
              reason: "ERR_TOKEN_MALFORMED",
              service: "demo.v1.DemoService",
              method: "ListNotes",
              protocol: t.protocol,
              subject: undefined,
            },
          ]),
        );
        // Each call looked its token up once; the valid token was cached on its
        // second verification, the malformed one remembered on its second refusal.
        assert.deepEqual(seen.lookups, [false, false, false, false, ...Array(6).fill(true)]);
        assert.deepEqual(seen.fetches, [
          { url: `${issuer.issuer}/.well-known/openid-configuration`, error: undefined },
          { url: issuer.jwksUrl, error: undefined },
        ]);
      });
    });
  }

  describe("with a Telemetry that throws", () => {
    const server = useServer(() => {
      const auth = createJwtAuth({ ...options(), telemetry: failing });
      return { interceptors: [auth.interceptor], requestGate: auth.requestGate };
    });

    test("every call is decided as without it", async () => {
      const token = await issuer.sign({ sub: "bob" });
      for (const transport of transports) {
        const client = server().client(transport);
        for (let i = 0; i < 3; i++) {
          assert.deepEqual(await call(client, "unary", `Bearer ${token}`), {
            ok: true,
            subject: "bob",
          });
        }
        const refused = await call(client, "unary", "Bearer x.y.z");
        assert.equal(refused.ok ? undefined : refused.error.code, Code.PermissionDenied);
        assert.equal((await client.ping({ text: "hi" })).text, "hi");
      }
    });
  });

  test("must have the three methods", () => {
    const bad = { authenticated() {}, cacheLookup() {} } as unknown as Telemetry;
    const message =
      "telemetry must be openTelemetry() from connect-jwt/otel, or an object with the methods authenticated, cacheLookup and keyFetch";
    assert.throws(() => createJwtAuth({ ...options(), telemetry: bad }), {
      name: "TypeError",
      message: `createJwtAuth: ${message}`,
    });
    const keys = { issuerUrl: issuer.issuer, audience: issuer.audience };
    assert.throws(() => createVerifier({ ...keys, telemetry: bad }), {
      name: "TypeError",
      message: `createVerifier: ${message}`,
    });
  });
});
