// compileRule and createScopesAndRoles on their own: exact matching of scopes,
// roles and claims, memoization, what a CEL expression sees, and the mistakes
// a rule is refused for at construction.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { freezeClaims } from "../../src/core/claims.js";
import { type CallInfo, type CompiledRule, compileRule, type Rule } from "../../src/core/rules.js";
import { createScopesAndRoles } from "../../src/core/scopes-and-roles.js";
import { AuthError, type AuthErrorCode, createJwtAuth, type JwtClaims } from "../../src/index.js";

const audience = "notes-api";
const secret = "0123456789abcdef0123456789abcdef";
const sets = createScopesAndRoles({}, [audience]);
const callInfo: CallInfo = {
  method: "notes.v1.NotesService/ListNotes",
  service: "notes.v1.NotesService",
  headers: new Headers({ authorization: "Bearer x.y.z" }),
};

/** Claims as the verifier hands them out: frozen, null-prototype. */
const claims = (payload: Record<string, unknown>): JwtClaims =>
  freezeClaims({ sub: "user-1", ...payload });

const sorted = (set: ReadonlySet<string>) => [...set].sort();

/** The AuthError a compiled rule refuses these claims with, or `undefined` when it admits them. */
async function refusalOf(
  rule: CompiledRule,
  payload: JwtClaims,
  info: CallInfo = callInfo,
): Promise<AuthError | undefined> {
  try {
    await rule.authorize(payload, info);
    return undefined;
  } catch (err) {
    assert.ok(err instanceof AuthError, String(err));
    return err;
  }
}

/** The refusal code of a rule for these claims, or "allowed". */
async function decide(
  rule: Rule | CompiledRule,
  payload: JwtClaims | Record<string, unknown>,
  info: CallInfo = callInfo,
): Promise<AuthErrorCode | "allowed"> {
  const compiled = "authorize" in rule ? rule : compileRule(rule, sets);
  const frozen = Object.isFrozen(payload) ? (payload as JwtClaims) : claims(payload);
  return (await refusalOf(compiled, frozen, info))?.code ?? "allowed";
}

describe("createScopesAndRoles", () => {
  const table: [
    name: string,
    payload: Record<string, unknown>,
    scopes: string[],
    roles: string[],
  ][] = [
    ["nothing", {}, [], []],
    ["scope string", { scope: "openid notes:read" }, ["notes:read", "openid"], []],
    ["doubled and edge spaces", { scope: " a  b " }, ["a", "b"], []],
    ["empty scope", { scope: "" }, [], []],
    ["scp array (Okta)", { scp: ["a", "b"] }, ["a", "b"], []],
    ["scp string (Entra)", { scp: "User.Read notes:read" }, ["User.Read", "notes:read"], []],
    ["permissions (Auth0)", { permissions: ["notes:write"] }, ["notes:write"], []],
    [
      "scope, scp and permissions together",
      { scope: "a", scp: ["b"], permissions: ["c"] },
      ["a", "b", "c"],
      [],
    ],
    ["a comma is part of a token", { scope: "a,b" }, ["a,b"], []],
    ["a tab is part of a token", { scope: "a\tb" }, ["a\tb"], []],
    ["non-string entries", { scope: [1, true, null, { a: 1 }, ["b"], "c"] }, ["c"], []],
    ["a scope object", { scope: { a: true } }, [], []],
    ["a scope number", { scope: 7 }, [], []],
    ["roles array", { roles: ["admin", "user"] }, [], ["admin", "user"]],
    ["roles string", { roles: "admin" }, [], ["admin"]],
    ["realm_access.roles", { realm_access: { roles: ["r"] } }, [], ["r"]],
    [
      "resource_access of the audience",
      { resource_access: { [audience]: { roles: ["mine"] }, other: { roles: ["theirs"] } } },
      [],
      ["mine"],
    ],
    ["a flat realm_access.roles claim", { "realm_access.roles": ["r"] }, [], []],
    ["groups", { groups: ["g1", "g2"] }, [], ["g1", "g2"]],
    ["scopes and roles stay apart", { scope: "s", roles: ["r"] }, ["s"], ["r"]],
    ["an unknown claim", { scopes: "a", role: "b", authorities: ["c"] }, [], []],
  ];
  for (const [name, payload, scopes, roles] of table) {
    test(name, () => {
      const got = sets(claims(payload));
      assert.deepEqual(sorted(got.scopes), scopes.sort());
      assert.deepEqual(sorted(got.roles), roles.sort());
    });
  }

  test("every configured audience, dots and all, gets its Keycloak client roles", () => {
    const two = createScopesAndRoles({}, ["https://api.example.com", "b"]);
    const got = two(
      claims({
        resource_access: {
          "https://api.example.com": { roles: ["x"] },
          b: { roles: "y" },
          https: { roles: ["z"] },
        },
      }),
    );
    assert.deepEqual(sorted(got.roles), ["x", "y"]);
  });

  test("inherited properties never count", () => {
    const inherited = Object.create({ roles: ["admin"], scope: "admin" }) as JwtClaims;
    const nested = { realm_access: Object.create({ roles: ["admin"] }) } as JwtClaims;
    for (const payload of [inherited, nested]) {
      const got = sets(payload);
      assert.equal(got.scopes.size + got.roles.size, 0);
    }
  });

  test("scopeClaims and roleClaims take dot paths and array paths", () => {
    const custom = createScopesAndRoles(
      { scopeClaims: ["ext.perms"], roleClaims: [["https://example.com/roles"], "app.roles"] },
      [audience],
    );
    const got = custom(
      claims({
        ext: { perms: "a b" },
        "https://example.com/roles": ["admin"],
        app: { roles: ["editor"] },
      }),
    );
    assert.deepEqual(sorted(got.scopes), ["a", "b"]);
    assert.deepEqual(sorted(got.roles), ["admin", "editor"]);
    // A dotted string is a path, not a claim name.
    const dotted = createScopesAndRoles({ roleClaims: ["https://example.com/roles"] }, []);
    assert.equal(dotted(claims({ "https://example.com/roles": ["admin"] })).roles.size, 0);
  });

  test("the sets of one claims object are computed once", () => {
    const one = claims({ scope: "a", roles: ["r"] });
    const first = sets(one);
    assert.equal(sets(one), first);
    const twin = claims({ scope: "a", roles: ["r"] });
    assert.notEqual(sets(twin), first);
    assert.deepEqual(sets(twin), first);
    // Another reader has its own memo.
    assert.notEqual(createScopesAndRoles({}, [audience])(one), first);
  });

  const badPaths: [string, unknown][] = [
    ["a string instead of an array", "scope"],
    ["an empty path", [""]],
    ["an empty segment", ["a..b"]],
    ["a trailing dot", ["a."]],
    ["an empty array path", [[]]],
    ["a non-string segment", [["a", 1]]],
    ["a number", [7]],
  ];
  for (const [name, value] of badPaths) {
    test(`a TypeError for ${name}`, () => {
      for (const option of ["scopeClaims", "roleClaims"] as const) {
        assert.throws(
          () => createJwtAuth({ secret, [option]: value as string[] }),
          (err: unknown) =>
            err instanceof TypeError && err.message.startsWith(`createJwtAuth: ${option}`),
        );
      }
    });
  }
});

describe("compileRule: exact matching", () => {
  const table: [
    name: string,
    rule: Rule,
    payload: Record<string, unknown>,
    AuthErrorCode | "allowed",
  ][] = [
    ["{} admits any valid token", {}, {}, "allowed"],
    ["scopes: all present", { scopes: ["a", "b"] }, { scope: "b c a" }, "allowed"],
    ["scopes: one missing", { scopes: ["a", "b"] }, { scope: "a" }, "ERR_INSUFFICIENT_SCOPE"],
    [
      "scopes: a superstring",
      { scopes: ["admin"] },
      { scope: "superadmin" },
      "ERR_INSUFFICIENT_SCOPE",
    ],
    [
      "scopes: a prefix",
      { scopes: ["notes:read"] },
      { scope: "notes:readwrite" },
      "ERR_INSUFFICIENT_SCOPE",
    ],
    ["scopes: comma-joined", { scopes: ["a"] }, { scope: "a,b" }, "ERR_INSUFFICIENT_SCOPE"],
    ["scopes: other case", { scopes: ["a"] }, { scope: "A" }, "ERR_INSUFFICIENT_SCOPE"],
    ["scopes: from permissions", { scopes: ["a"] }, { permissions: ["a"] }, "allowed"],
    ["scopes: not from roles", { scopes: ["a"] }, { roles: ["a"] }, "ERR_INSUFFICIENT_SCOPE"],
    ["anyScopes: one present", { anyScopes: ["a", "b"] }, { scp: ["b"] }, "allowed"],
    [
      "anyScopes: none present",
      { anyScopes: ["a", "b"] },
      { scp: ["c"] },
      "ERR_INSUFFICIENT_SCOPE",
    ],
    ["anyScopes: [] asks nothing", { anyScopes: [] }, {}, "allowed"],
    ["roles: all present", { roles: ["a", "b"] }, { roles: ["a"], groups: ["b"] }, "allowed"],
    ["roles: one missing", { roles: ["a", "b"] }, { roles: ["a"] }, "ERR_ACCESS_DENIED"],
    ["roles: a superstring", { roles: ["admin"] }, { roles: "superadmin" }, "ERR_ACCESS_DENIED"],
    ["roles: not from scopes", { roles: ["a"] }, { scope: "a" }, "ERR_ACCESS_DENIED"],
    ["anyRoles: one present", { anyRoles: ["a", "b"] }, { groups: ["b"] }, "allowed"],
    ["anyRoles: none present", { anyRoles: ["a", "b"] }, { groups: ["c"] }, "ERR_ACCESS_DENIED"],
    ["claimEquals: equal", { claimEquals: { tenant: "acme" } }, { tenant: "acme" }, "allowed"],
    [
      "claimEquals: other case",
      { claimEquals: { tenant: "acme" } },
      { tenant: "ACME" },
      "ERR_ACCESS_DENIED",
    ],
    ["claimEquals: missing", { claimEquals: { tenant: "acme" } }, {}, "ERR_ACCESS_DENIED"],
    [
      "claimEquals: an array",
      { claimEquals: { tenant: "acme" } },
      { tenant: ["acme"] },
      "ERR_ACCESS_DENIED",
    ],
    ["claimEquals: number", { claimEquals: { level: 3 } }, { level: 3 }, "allowed"],
    [
      "claimEquals: number as string",
      { claimEquals: { level: 3 } },
      { level: "3" },
      "ERR_ACCESS_DENIED",
    ],
    ["claimEquals: true", { claimEquals: { mfa: true } }, { mfa: true }, "allowed"],
    [
      "claimEquals: true as string",
      { claimEquals: { mfa: true } },
      { mfa: "true" },
      "ERR_ACCESS_DENIED",
    ],
    ["claimEquals: false vs missing", { claimEquals: { mfa: false } }, {}, "ERR_ACCESS_DENIED"],
    [
      "claimEquals: dot path",
      { claimEquals: { "org.id": "o1" } },
      { org: { id: "o1" } },
      "allowed",
    ],
    [
      "claimEquals: flat dotted name",
      { claimEquals: { "org.id": "o1" } },
      { "org.id": "o1" },
      "ERR_ACCESS_DENIED",
    ],
    ["claimIncludes: array", { claimIncludes: { amr: "mfa" } }, { amr: ["pwd", "mfa"] }, "allowed"],
    ["claimIncludes: string", { claimIncludes: { amr: "mfa" } }, { amr: "pwd mfa" }, "allowed"],
    [
      "claimIncludes: substring",
      { claimIncludes: { org: "acme" } },
      { org: "acme-corp" },
      "ERR_ACCESS_DENIED",
    ],
    ["claimIncludes: missing", { claimIncludes: { amr: "mfa" } }, {}, "ERR_ACCESS_DENIED"],
    [
      "claimIncludes: object",
      { claimIncludes: { amr: "mfa" } },
      { amr: { mfa: true } },
      "ERR_ACCESS_DENIED",
    ],
    ["claimIncludes: number", { claimIncludes: { levels: 2 } }, { levels: [1, 2] }, "allowed"],
    [
      "claimIncludes: number as string",
      { claimIncludes: { levels: 2 } },
      { levels: ["2"] },
      "ERR_ACCESS_DENIED",
    ],
    ["claimIncludes: dot path", { claimIncludes: { "a.b": "x" } }, { a: { b: ["x"] } }, "allowed"],
    ["scopes are judged first", { scopes: ["a"], roles: ["r"] }, {}, "ERR_INSUFFICIENT_SCOPE"],
    ["scopes met, roles not", { scopes: ["a"], roles: ["r"] }, { scope: "a" }, "ERR_ACCESS_DENIED"],
    [
      "every field met",
      { scopes: ["a"], roles: ["r"], claimEquals: { t: "x" }, claimIncludes: { g: "y" } },
      { scope: "a", roles: ["r"], t: "x", g: ["y"] },
      "allowed",
    ],
  ];
  for (const [name, rule, payload, expected] of table) {
    test(name, async () => {
      assert.equal(await decide(rule, payload), expected);
    });
  }

  test("an insufficient scope names the scopes asked for", async () => {
    const all = await refusalOf(compileRule({ scopes: ["a", "b"] }, sets), claims({}));
    assert.deepEqual(
      [all?.code, all?.scope, all?.challenge, all?.forbidden],
      ["ERR_INSUFFICIENT_SCOPE", "a b", "insufficient_scope", true],
    );
    const any = await refusalOf(compileRule({ anyScopes: ["c", "d"] }, sets), claims({}));
    assert.equal(any?.scope, "c d");
    const denied = await refusalOf(compileRule({ roles: ["r"] }, sets), claims({}));
    assert.deepEqual(
      [denied?.code, denied?.scope, denied?.forbidden],
      ["ERR_ACCESS_DENIED", undefined, true],
    );
  });

  test("a public rule admits anyone; any other rule is not public", async () => {
    const open = compileRule({ public: true }, sets);
    assert.equal(open.public, true);
    assert.equal(await refusalOf(open, claims({})), undefined);
    for (const rule of [{}, { public: false }, { scopes: ["a"] }]) {
      assert.equal(compileRule(rule, sets).public, false);
    }
  });

  test("only a rule without conditions reads no claims: no scope or role sets are built", async () => {
    let built = 0;
    const counting = (c: JwtClaims) => {
      built++;
      return sets(c);
    };
    for (const rule of [{}, { public: false }, { public: true }, { scopes: [] }, { expr: "" }]) {
      assert.equal(await refusalOf(compileRule(rule, counting), claims({})), undefined);
    }
    assert.equal(built, 0);
    const others: Rule[] = [
      { scopes: ["a"] },
      { anyScopes: ["a"] },
      { roles: ["r"] },
      { anyRoles: ["r"] },
      { claimEquals: { tenant: "acme" } },
      { claimIncludes: { groups: "staff" } },
      { check: () => true },
      { expr: "true" },
    ];
    for (const rule of others) {
      const before = built;
      await refusalOf(compileRule(rule, counting), claims({}));
      assert.ok(built > before, Object.keys(rule).join());
    }
  });
});

describe("compileRule: CEL", () => {
  test("sees claims, the normalized scopes and roles, and the method", async () => {
    const payload = claims({
      scp: ["notes:read"],
      realm_access: { roles: ["admin"] },
      org: { tenant: "acme", level: 3 },
      amr: ["pwd", "mfa"],
      email_verified: true,
    });
    const allowed: string[] = [
      "'notes:read' in scopes",
      "'admin' in roles",
      "method == 'notes.v1.NotesService/ListNotes'",
      "claims.org.tenant == 'acme' && claims.org.level >= 3",
      "claims.email_verified",
      "size(claims.amr) == 2 && 'mfa' in claims.amr",
      "claims.sub == 'user-1'",
      "has(claims.org) && !has(claims.missing)",
      "size(scopes) == 1 && size(roles) == 1",
    ];
    for (const expr of allowed) {
      assert.equal(await decide({ expr }, payload), "allowed", expr);
    }
    const refused = [
      "'admin' in scopes",
      "'notes:read' in roles",
      "method == 'notes.v1.NotesService/Other'",
      "claims.org.tenant == 'other'",
    ];
    for (const expr of refused) {
      assert.equal(await decide({ expr }, payload), "ERR_ACCESS_DENIED", expr);
    }
    const other = { ...callInfo, method: "notes.v1.NotesService/Other" };
    assert.equal(
      await decide({ expr: "method == 'notes.v1.NotesService/Other'" }, payload, other),
      "allowed",
    );
  });

  test("a result that is not the boolean true refuses", async () => {
    const payload = claims({ tenant: "acme", n: 1, list: [true] });
    for (const expr of [
      "false",
      "claims.tenant",
      "claims.n",
      "1",
      "'true'",
      "[true]",
      "{'a': true}",
      "null",
      "scopes",
      "claims.list",
    ]) {
      assert.equal(await decide({ expr }, payload), "ERR_ACCESS_DENIED", expr);
    }
  });

  test("an error while evaluating refuses with ERR_RULE_FAILED", async () => {
    const payload = claims({ sub: "user-1", n: 1 });
    for (const expr of [
      "claims.missing == 'x'",
      "claims.sub + 1 == 2",
      "1 / 0 == 1",
      "claims.sub.matches('(')",
      "int(claims.sub) == 1",
      "[1][3] == 1",
    ]) {
      assert.equal(await decide({ expr }, payload), "ERR_RULE_FAILED", expr);
    }
  });

  test("an unknown variable never admits: a TypeError now, or a refusal later", async () => {
    let compiled: CompiledRule | undefined;
    try {
      compiled = compileRule({ expr: "user == 'x'" }, sets);
    } catch (err) {
      assert.ok(err instanceof TypeError);
      return;
    }
    assert.equal(await decide(compiled, { user: "x" }), "ERR_RULE_FAILED");
  });

  test("each claims object is judged on its own", async () => {
    const rule = compileRule({ expr: "claims.tenant == 'acme'" }, sets);
    const acme = claims({ tenant: "acme" });
    const other = claims({ tenant: "other" });
    assert.equal(await decide(rule, acme), "allowed");
    assert.equal(await decide(rule, other), "ERR_ACCESS_DENIED");
    assert.equal(await decide(rule, acme), "allowed");
  });

  test('an empty expr (the proto default "") asks nothing', async () => {
    assert.equal(await decide({ expr: "" }, {}), "allowed");
  });

  test("the other requirements still apply", async () => {
    const rule: Rule = { scopes: ["a"], expr: "true" };
    assert.equal(await decide(rule, {}), "ERR_INSUFFICIENT_SCOPE");
    assert.equal(await decide(rule, { scope: "a" }), "allowed");
  });
});

describe("compileRule: check", () => {
  test("receives the claims and the call, and must return exactly true", async () => {
    const payload = claims({ tenant: "acme" });
    const seen: [JwtClaims, CallInfo][] = [];
    const rule = compileRule(
      {
        check(c, info) {
          seen.push([c, info]);
          return c.tenant === "acme";
        },
      },
      sets,
    );
    assert.equal(await decide(rule, payload), "allowed");
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.[0], payload);
    assert.equal(seen[0]?.[1], callInfo);
    assert.equal(await decide(rule, { tenant: "other" }), "ERR_ACCESS_DENIED");
  });

  test("truthy is not true", async () => {
    for (const value of [1, "true", {}, [true], Promise.resolve(1)]) {
      const rule: Rule = { check: () => value as boolean };
      assert.equal(await decide(rule, {}), "ERR_ACCESS_DENIED", String(value));
    }
    assert.equal(await decide({ check: async () => true }, {}), "allowed");
  });

  test("a check that throws or rejects refuses with ERR_RULE_FAILED, keeping no message", async () => {
    const secret = "secret-claim-value-91";
    const throwing: NonNullable<Rule["check"]>[] = [
      () => {
        throw new Error(secret);
      },
      () => Promise.reject(new Error(secret)),
      () => {
        throw secret;
      },
    ];
    for (const check of throwing) {
      const refusal = await refusalOf(compileRule({ check }, sets), claims({}));
      assert.equal(refusal?.code, "ERR_RULE_FAILED");
      assert.equal(refusal?.message, "access denied");
      assert.ok(refusal?.cause instanceof Error);
      assert.ok(!String(refusal.cause.message).includes(secret));
      assert.ok(!refusal.message.includes(secret));
    }
  });
});

describe("compileRule: mistakes are TypeErrors naming the method", () => {
  const method = "notes.v1.NotesService/ListNotes";
  const where = `createJwtAuth: rules["${method}"]`;
  const mistakes: [name: string, rule: unknown][] = [
    ["null", null],
    ["a string", "public"],
    ["public with scopes", { public: true, scopes: ["a"] }],
    ["public with anyRoles", { public: true, anyRoles: ["a"] }],
    ["public with claimEquals", { public: true, claimEquals: { a: "b" } }],
    ["public with a check", { public: true, check: () => true }],
    ["public with an expr", { public: true, expr: "true" }],
    ["scopes not an array", { scopes: "a" }],
    ["a scope with a space", { scopes: ["a b"] }],
    ["a scope with a quote", { scopes: ['a"b'] }],
    ["a scope with a backslash", { anyScopes: ["a\\b"] }],
    ["an empty scope", { scopes: [""] }],
    ["a non-ASCII scope", { scopes: ["café"] }],
    ["a scope with a control character", { scopes: ["a\u007fb"] }],
    ["a non-string scope", { scopes: [1] }],
    ["an empty role", { roles: [""] }],
    ["a non-string role", { anyRoles: [null] }],
    ["check not a function", { check: true }],
    ["a broken expr", { expr: "scopes.((" }],
    ["an unfinished expr", { expr: "'a' in" }],
  ];
  for (const [name, rule] of mistakes) {
    test(name, () => {
      assert.throws(
        () => createJwtAuth({ secret, rules: { [method]: rule as Rule } }),
        (err: unknown) => {
          assert.ok(err instanceof TypeError, String(err));
          assert.ok(err.message.startsWith(where), err.message);
          return true;
        },
      );
    });
  }

  // Rules also come from JSON config and plain JavaScript, where the types do
  // not guard them. A mistake there must not quietly open the method.
  const failOpen: [name: string, rule: unknown, payload: Record<string, unknown>][] = [
    ["an unknown field (scope for scopes)", { scope: ["admin"] }, { scope: "read" }],
    ["an unknown field (role for roles)", { role: ["admin"] }, {}],
    ['public: "false"', { public: "false" }, {}],
    ["claimEquals with an undefined value", { claimEquals: { tenant: undefined } }, {}],
  ];
  for (const [name, rule, payload] of failOpen) {
    test(`${name}: a TypeError, never an open method`, async () => {
      try {
        createJwtAuth({ secret, rules: { [method]: rule as Rule } });
      } catch (err) {
        assert.ok(err instanceof TypeError, String(err));
        assert.ok(err.message.startsWith(where), err.message);
        return;
      }
      const compiled = compileRule(rule as Rule, sets);
      const admits = !compiled.public && (await decide(compiled, payload)) === "allowed";
      assert.fail(
        `${JSON.stringify(rule)} compiled to a rule that ${compiled.public ? "is public" : admits ? "admits any valid token" : "refuses"}; expected a TypeError`,
      );
    });
  }
});

describe("CEL expressions read only the variables rules offer", () => {
  test("an unknown variable is a TypeError at construction", () => {
    assert.throws(
      () => compileRule({ expr: "user == 'x'" }, sets),
      /the CEL expression "user == 'x'" uses user; it can use claims, scopes, roles, method/,
    );
  });

  test("comprehension variables are bound, and their ranges still checked", async () => {
    const rule = compileRule({ expr: "scopes.exists(s, s.startsWith('notes:'))" }, sets);
    assert.equal(await decide(rule, { scope: "notes:read" }), "allowed");
    assert.equal(await decide(rule, { scope: "chat" }), "ERR_ACCESS_DENIED");
    assert.throws(() => compileRule({ expr: "other.exists(s, s == 'a')" }, sets), /uses other/);
  });

  test("a run-time failure gives a cause that quotes no claim", async () => {
    const compiled = compileRule({ expr: "claims.tenant == 'secret-tenant-1'" }, sets);
    const refusal = await refusalOf(compiled, claims({ sub: "secret-subject-1" }));
    assert.equal(refusal?.code, "ERR_RULE_FAILED");
    assert.equal(String(refusal?.cause), "Error: CEL evaluation error");
  });
});
