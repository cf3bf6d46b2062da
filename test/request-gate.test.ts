import assert from "node:assert/strict";
import { Session } from "node:inspector";
import { describe, test } from "node:test";
import { Code, ConnectError, createContextValues, createHandlerContext } from "@connectrpc/connect";
import { DemoService } from "../gen/demo/v1/demo_pb.js";
import {
  type AuthenticatedEvent,
  createJwtAuth,
  getClaims,
  type JwtAuthOptions,
  type JwtClaims,
} from "../src/index.js";
import { call, callKinds, gateAndInterceptor, transports, useServer } from "./helpers/server.js";
import { audience, generateTestKey, issuer, mint } from "./helpers/tokens.js";

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

describe("the gate decides at once when it can", () => {
  const method = DemoService.method.whoAmI;
  const context = (authorization?: string) =>
    createHandlerContext({
      service: DemoService,
      method,
      protocolName: "connect",
      requestMethod: "POST",
      url: `http://localhost/${DemoService.typeName}/${method.name}`,
      requestHeader: authorization === undefined ? {} : { authorization },
    });

  test("a cached token: the claims are in the context when the gate returns, before any await", async () => {
    const auth = createJwtAuth(options);
    const token = `Bearer ${await mint(key, { claims: { sub: "cached" } })}`;
    // Verified twice: the cache admits a token on its second verification.
    await auth.requestGate(context(token));
    await auth.requestGate(context(token));
    const ctx = context(token);
    const pending = auth.requestGate(ctx);
    assert.equal(getClaims(ctx)?.sub, "cached");
    await pending;
    // The control: a token not yet cached is decided later, in the promise.
    const fresh = context(`Bearer ${await mint(key, { claims: { sub: "fresh" } })}`);
    const later = auth.requestGate(fresh);
    assert.equal(getClaims(fresh), undefined);
    await later;
    assert.equal(getClaims(fresh)?.sub, "fresh");
  });

  test("a refusal decided before the signature is returned, not thrown and caught inside", async () => {
    // A throw caught a few frames up costs several µs in a busy server: the
    // refusals a server sees most are decided without one. The count is of
    // every exception thrown while the gate decides, caught or not.
    assert.equal(
      countThrows(() => {
        try {
          throw new Error("the control: a caught throw is counted");
        } catch {}
      }),
      1,
    );
    const now = Math.floor(Date.now() / 1000);
    const refused: Record<string, string | undefined> = {
      missing: undefined,
      "another scheme": "Basic dXNlcjpwYXNz",
      "not a JWS": "Bearer x.y",
      expired: `Bearer ${await mint(key, { claims: { exp: now - 60 } })}`,
      "wrong issuer": `Bearer ${await mint(key, { claims: { iss: "https://other.test/" } })}`,
      "wrong audience": `Bearer ${await mint(key, { claims: { aud: "other-api" } })}`,
      "not yet valid": `Bearer ${await mint(key, { claims: { nbf: now + 600 } })}`,
    };
    const auth = createJwtAuth(options);
    for (const [what, authorization] of Object.entries(refused)) {
      // Twice: the second refusal of a lasting one comes from the refusal cache.
      for (const time of ["first", "second"]) {
        let pending: Promise<void> | undefined;
        const throws = countThrows(() => {
          pending = auth.requestGate(context(authorization));
        });
        assert.equal(throws, 0, `${what}, ${time} time: ${throws} exception(s) thrown`);
        await assert.rejects(pending as Promise<void>, ConnectError);
      }
    }
  });

  test("a refusal made at once still comes as a rejected promise, never a throw", async () => {
    const auth = createJwtAuth(options);
    let pending: Promise<void> | undefined;
    assert.doesNotThrow(() => {
      pending = auth.requestGate(context());
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

/** The exceptions thrown while `run` runs, caught or not (the inspector pauses on each). */
function countThrows(run: () => void): number {
  const session = new Session();
  session.connect();
  let thrown = 0;
  session.on("Debugger.paused", (message) => {
    if (message.params.reason === "exception") {
      thrown++;
    }
    session.post("Debugger.resume");
  });
  session.post("Debugger.enable");
  session.post("Debugger.setPauseOnExceptions", { state: "all" });
  try {
    run();
  } finally {
    session.post("Debugger.setPauseOnExceptions", { state: "none" });
    session.post("Debugger.disable");
    session.disconnect();
  }
  return thrown;
}
