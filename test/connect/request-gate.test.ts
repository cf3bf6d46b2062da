import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code, ConnectError, createContextValues, createHandlerContext } from "@connectrpc/connect";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import {
  type AuthenticatedEvent,
  createJwtAuth,
  type JwtAuthOptions,
  type JwtClaims,
} from "../../src/index.js";
import { audience, generateTestKey, issuer, mint } from "../helpers/fixtures.js";
import { call, callKinds, gateAndInterceptor, transports, useServer } from "../helpers/server.js";

const key = await generateTestKey("ES256");
const options: JwtAuthOptions = { jwks: { keys: [key.publicJwk] }, issuer, audience };
const fourMiB = "x".repeat(4 * 1024 * 1024);

describe("a refused call with a 4 MiB body", () => {
  const gated = useServer(() => gateAndInterceptor(options));
  const intercepted = useServer(() =>
    Promise.resolve({ interceptors: [createJwtAuth(options).interceptor] }),
  );

  for (const transport of transports) {
    test(`${transport.name}: the gate refuses it without reading the body`, async () => {
      const expired = await mint(key, { claims: { exp: Math.floor(Date.now() / 1000) - 60 } });
      const headers = { authorization: `Bearer ${expired}` };
      for (const [server, readsBody] of [
        [gated(), false],
        [intercepted(), true],
      ] as const) {
        server.bodyBytesRead = 0;
        const err = await server
          .client(transport)
          .ping({ text: fourMiB }, { headers })
          .then(
            () => undefined,
            (e: unknown) => ConnectError.from(e),
          );
        assert.equal(err?.code, Code.PermissionDenied);
        assert.equal(err?.rawMessage, "token expired");
        assert.equal(server.calls.length, 0);
        if (readsBody) {
          // Without the gate the interceptor runs only after the whole body was
          // read and parsed: this is what the gate saves, and proves the count works.
          assert.ok(server.bodyBytesRead >= fourMiB.length, `read ${server.bodyBytesRead} bytes`);
        } else {
          assert.equal(server.bodyBytesRead, 0);
        }
      }
    });
  }
});

describe("a call the gate accepted", () => {
  const authenticated: AuthenticatedEvent[] = [];
  const server = useServer(() =>
    gateAndInterceptor({ ...options, onAuthenticated: (e) => authenticated.push(e) }),
  );

  for (const transport of transports) {
    test(`${transport.name}: is verified once, not again by the interceptor`, async () => {
      for (const kind of callKinds(transport)) {
        authenticated.length = 0;
        const token = await mint(key, { claims: { sub: "once" } });
        assert.deepEqual(await call(server().client(transport), kind, `Bearer ${token}`), {
          ok: true,
          subject: "once",
        });
        assert.deepEqual(
          authenticated.map((e) => [e.subject, e.protocol]),
          [["once", transport.protocol]],
          kind,
        );
      }
    });
  }
});

describe("claims as handlers see them", () => {
  const server = useServer(() => gateAndInterceptor(options));

  test("are deeply frozen, with null prototypes, and __proto__ grants nothing", async () => {
    const token = await mint(key, {
      claims: {
        sub: "frozen",
        realm_access: { roles: ["reader"] },
        groups: ["a", { nested: true }],
        ["__proto__" as string]: { admin: true },
      },
    });
    const transport = transports[0];
    assert.ok(transport);
    await call(server().client(transport), "unary", `Bearer ${token}`);
    const claims = server().calls.at(-1)?.claims as JwtClaims;
    assert.equal(claims.sub, "frozen");
    assert.equal(Object.getPrototypeOf(claims), null);
    assert.ok(Object.isFrozen(claims));
    const realm = claims.realm_access as { roles: string[] };
    assert.ok(Object.isFrozen(realm) && Object.isFrozen(realm.roles));
    assert.equal(Object.getPrototypeOf(realm), null);
    const groups = claims.groups as [string, { nested: boolean }];
    assert.ok(Object.isFrozen(groups) && Object.isFrozen(groups[1]));
    assert.throws(() => {
      (claims as { sub: string }).sub = "someone else";
    }, TypeError);
    assert.throws(() => realm.roles.push("admin"), TypeError);
    // The payload's "__proto__" is an own data property: no prototype gained `admin`.
    assert.equal((claims as { admin?: unknown }).admin, undefined);
    assert.equal(({} as { admin?: unknown }).admin, undefined);
    const own = Object.getOwnPropertyDescriptor(claims, "__proto__")?.value as { admin?: unknown };
    assert.equal(own.admin, true);
  });
});

describe("hooks that throw", () => {
  const server = useServer(() =>
    gateAndInterceptor({
      ...options,
      onDenied: () => {
        throw new Error("logger down");
      },
      onAuthenticated: () => Promise.reject(new Error("metrics down")),
    }),
  );

  test("change no decision", async () => {
    const transport = transports[2];
    assert.ok(transport);
    const token = await mint(key, { claims: { sub: "hooked" } });
    assert.deepEqual(await call(server().client(transport), "unary", `Bearer ${token}`), {
      ok: true,
      subject: "hooked",
    });
    const refused = await call(server().client(transport), "unary");
    assert.equal(refused.ok ? undefined : refused.error.code, Code.PermissionDenied);
  });
});

describe("the gate and the interceptor of two JwtAuths", () => {
  // A server that puts one JwtAuth's gate before another's interceptor (say,
  // a stricter audience for a group of services) gets both checks.
  const strict = createJwtAuth({ ...options, audience: "strict-api" });
  const server = useServer({
    interceptors: [strict.interceptor],
    requestGate: createJwtAuth(options).requestGate,
  });

  for (const transport of transports) {
    test(`${transport.name}: the gate's admission does not spare the other interceptor`, async () => {
      const token = await mint(key, { claims: { sub: "lenient" } });
      const outcome = await call(server().client(transport), "unary", `Bearer ${token}`);
      assert.equal(outcome.ok ? undefined : outcome.error.rawMessage, "invalid token");
      const both = await mint(key, { claims: { sub: "both", aud: [audience, "strict-api"] } });
      assert.deepEqual(await call(server().client(transport), "unary", `Bearer ${both}`), {
        ok: true,
        subject: "both",
      });
    });
  }
});

describe("a refusal comes as a rejected promise, never a throw", () => {
  const method = DemoService.method.whoAmI;

  test("from the gate and from the interceptor", async () => {
    const auth = createJwtAuth(options);
    let pending: Promise<void> | undefined;
    assert.doesNotThrow(() => {
      pending = auth.requestGate(
        createHandlerContext({
          service: DemoService,
          method,
          protocolName: "connect",
          requestMethod: "POST",
          url: `http://localhost/${DemoService.typeName}/${method.name}`,
          requestHeader: {},
        }),
      );
    });
    await assert.rejects(
      pending as Promise<void>,
      (err: unknown) => err instanceof ConnectError && err.code === Code.PermissionDenied,
    );
    const interceptor = auth.interceptor(() => {
      throw new Error("next must not be called");
    });
    let intercepted: Promise<unknown> | undefined;
    assert.doesNotThrow(() => {
      intercepted = interceptor({
        method,
        service: DemoService,
        header: new Headers({ authorization: "Bearer x.y" }),
        contextValues: createContextValues(),
      } as unknown as Parameters<typeof interceptor>[0]);
    });
    await assert.rejects(
      intercepted as Promise<unknown>,
      (err: unknown) => err instanceof ConnectError && err.code === Code.PermissionDenied,
    );
  });
});
