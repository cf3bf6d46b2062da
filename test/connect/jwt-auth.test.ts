import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import { toConnectError } from "../../src/connect/connect-error.js";
import { failureCodeKey } from "../../src/connect/context.js";
import {
  AuthError,
  type AuthErrorCode,
  claimsKey,
  createJwtAuth,
  getClaims,
  type JwtAuthOptions,
  jwtInterceptor,
  requireClaims,
} from "../../src/index.js";

const secret = "0123456789abcdef0123456789abcdef";

describe("createJwtAuth option mistakes throw a TypeError that says how to fix them", () => {
  const cases: [string, unknown, RegExp][] = [
    ["no options", undefined, /pass an options object/],
    [
      "no key source",
      {},
      /no key source; pass one of `secret`, `publicKey`, `jwks`, `jwksUrl` or `issuerUrl`/,
    ],
    [
      "publicMethods not an array",
      { secret, publicMethods: "demo.v1.DemoService/Ping" },
      /must be an array/,
    ],
    [
      "publicMethods with a leading slash",
      { secret, publicMethods: ["/demo.v1.DemoService/Ping"] },
      /no leading slash/,
    ],
    [
      "publicMethods without a method",
      { secret, publicMethods: ["demo.v1.DemoService"] },
      /"pkg.Service\/Method" or "pkg.Service\/\*"/,
    ],
    ["publicMethods with a global wildcard", { secret, publicMethods: ["*"] }, /"pkg.Service\/\*"/],
    ["failureCode not a Code", { secret, failureCode: 99 }, /failureCode must be a Code/],
    [
      "failureCode a Code's name, not the Code",
      { secret, failureCode: "Unauthenticated" },
      /failureCode must be a Code/,
    ],
    [
      "a misspelt option",
      { secret, publicMethod: ["demo.v1.DemoService/Ping"] },
      /unknown option `publicMethod`; did you mean `publicMethods`\?/,
    ],
    [
      "an unknown option far from any",
      { secret, frobnicate: true },
      /unknown option `frobnicate`$/,
    ],
    [
      "publicKey empty (an unset variable)",
      { publicKey: "", algorithms: ["ES256"] },
      /publicKey is empty/,
    ],
    [
      "jwksUrl without audience",
      { jwksUrl: "https://auth.example.com/jwks.json", issuer: "https://auth.example.com/" },
      /set `audience` to the `aud` of this API.*audience: false/,
    ],
    ["issuerUrl without audience", { issuerUrl: "https://auth.example.com/" }, /set `audience`/],
    [
      "an issuers entry with jwksUrl and no audience anywhere",
      { issuers: [{ issuer: "https://a.example/", jwksUrl: "https://a.example/jwks" }] },
      /issuers\[0\]: set `audience`/,
    ],
    [
      "a misspelt option in an issuers entry",
      { audience: "api", issuers: [{ issuer: "https://a.example/", secret, audiences: "x" }] },
      /issuers\[0\]: unknown option `audiences`; did you mean `audience`\?/,
    ],
    ["onDenied not a function", { secret, onDenied: "console.log" }, /onDenied must be a function/],
    [
      "onAuthenticated not a function",
      { secret, onAuthenticated: {} },
      /onAuthenticated must be a function/,
    ],
  ];
  for (const [name, options, message] of cases) {
    test(name, () => {
      assert.throws(
        () => createJwtAuth(options as JwtAuthOptions),
        (err: unknown) => {
          assert.ok(err instanceof TypeError);
          assert.match(err.message, /^createJwtAuth: /);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }

  test("audience: false accepts keys from a URL without an audience, on purpose", () => {
    const jwksUrl = "https://auth.example.com/jwks.json";
    assert.equal(typeof createJwtAuth({ jwksUrl, audience: false }).interceptor, "function");
    assert.equal(
      typeof createJwtAuth({
        issuers: [{ issuer: "https://a.example/", jwksUrl }],
        audience: "api",
      }).interceptor,
      "function",
    );
  });

  test("jwtInterceptor validates the same way", () => {
    assert.throws(() => jwtInterceptor({ secret: "short" }), /at least 32/);
    assert.equal(typeof jwtInterceptor({ secret }), "function");
  });
});

describe("toConnectError", () => {
  test("makes a refusal without stack frames, and leaves Error.stackTraceLimit as it was", () => {
    const limit = Error.stackTraceLimit;
    const err = toConnectError(new AuthError("ERR_TOKEN_MISSING"), Code.PermissionDenied);
    assert.doesNotMatch(err.stack ?? "", /\n\s+at /);
    assert.equal(Error.stackTraceLimit, limit);
    // The control: an ordinary error made here has frames.
    assert.match(new Error("x").stack ?? "", /\n\s+at /);
  });

  test("where Error.stackTraceLimit cannot be changed, the refusal is still made", (t) => {
    const descriptor = Object.getOwnPropertyDescriptor(Error, "stackTraceLimit");
    Object.defineProperty(Error, "stackTraceLimit", {
      value: 10,
      writable: false,
      configurable: true,
    });
    t.after(() => {
      if (descriptor !== undefined) {
        Object.defineProperty(Error, "stackTraceLimit", descriptor);
      }
    });
    const err = toConnectError(new AuthError("ERR_TOKEN_EXPIRED"), Code.PermissionDenied);
    assert.equal(err.rawMessage, "token expired");
    assert.equal(Error.stackTraceLimit, 10);
  });

  const table: [AuthErrorCode, Code, string, string | null][] = [
    ["ERR_TOKEN_MISSING", Code.PermissionDenied, "missing bearer token", "Bearer"],
    [
      "ERR_AUTHORIZATION_MALFORMED",
      Code.PermissionDenied,
      "malformed authorization header",
      'Bearer error="invalid_request"',
    ],
    ["ERR_TOKEN_EXPIRED", Code.PermissionDenied, "token expired", 'Bearer error="invalid_token"'],
    [
      "ERR_SIGNATURE_INVALID",
      Code.PermissionDenied,
      "invalid token",
      'Bearer error="invalid_token"',
    ],
    ["ERR_KEYS_UNAVAILABLE", Code.Unavailable, "authentication unavailable", null],
  ];
  for (const [reason, code, message, challenge] of table) {
    test(`${reason} becomes ${Code[code]} with ${challenge ?? "no challenge"}`, () => {
      const err = toConnectError(
        new AuthError(reason, { cause: new Error("detail") }),
        Code.PermissionDenied,
      );
      assert.equal(err.code, code);
      assert.equal(err.rawMessage, message);
      assert.equal(err.metadata.get("www-authenticate"), challenge);
      assert.equal(err.cause, undefined, "the cause must not travel with the ConnectError");
    });
  }

  test("the failure code is configurable, Unavailable is not", () => {
    assert.equal(
      toConnectError(new AuthError("ERR_TOKEN_EXPIRED"), Code.Unauthenticated).code,
      Code.Unauthenticated,
    );
    assert.equal(
      toConnectError(new AuthError("ERR_KEYS_UNAVAILABLE"), Code.Unauthenticated).code,
      Code.Unavailable,
    );
  });
});

describe("getClaims and requireClaims", () => {
  test("read the claims from a context or its values", () => {
    const values = createContextValues();
    assert.equal(getClaims(values), undefined);
    const claims = Object.freeze({ sub: "a" });
    values.set(claimsKey, claims);
    assert.equal(getClaims({ values }), claims);
    assert.equal(requireClaims(values), claims);
  });

  test("requireClaims refuses with the auth's failure code when there are no claims", () => {
    const values = createContextValues();
    values.set(failureCodeKey, Code.Unauthenticated);
    assert.throws(
      () => requireClaims({ values }),
      (err: unknown) =>
        err instanceof ConnectError &&
        err.code === Code.Unauthenticated &&
        err.rawMessage === "missing bearer token" &&
        err.metadata.get("www-authenticate") === "Bearer",
    );
    assert.throws(
      () => requireClaims(createContextValues()),
      (err: unknown) => err instanceof ConnectError && err.code === Code.PermissionDenied,
    );
  });
});

describe("verify", () => {
  test("checks a bare token with the same verifier", async () => {
    const auth = createJwtAuth({ secret });
    await assert.rejects(
      auth.verify("a.b.c"),
      (err: unknown) => err instanceof AuthError && err.code === "ERR_TOKEN_MALFORMED",
    );
  });
});
