// Per-method access rules, end to end: every rule kind on every transport and
// kind of call, the claim shapes of the usual issuers, the rules DemoService
// declares in its .proto, the precedence of code, method, service and default
// rules, assertRules, and the mistakes createJwtAuth refuses to start with.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  create,
  createFileRegistry,
  type DescMethod,
  type DescMethodUnary,
  type DescService,
  type MessageInitShape,
  setExtension,
} from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  MethodOptionsSchema,
  ServiceOptionsSchema,
} from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import {
  AccessRuleSchema,
  default_rule,
  rule as ruleOption,
} from "../../gen/connectjwt/v1/auth_pb.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import type { CallInfo, Rule } from "../../src/core/rules.js";
import {
  type AuthErrorCode,
  createJwtAuth,
  type DeniedEvent,
  getClaims,
  type JwtAuthOptions,
  type JwtClaims,
} from "../../src/index.js";
import { audience, generateTestKey, issuer, type MintOptions, mint } from "../helpers/fixtures.js";
import {
  type CallKind,
  call,
  callKinds,
  methodOf,
  type Outcome,
  type ServerAuth,
  type TestServer,
  type TransportKind,
  transports,
  useServer,
} from "../helpers/server.js";

const key = await generateTestKey("ES256");
const subject = "rules-subject-4d2e";
const demo = "demo.v1.DemoService";

// Every server here fails authentication with Unauthenticated, so that each
// refusal by a rule shows it answers PermissionDenied all the same.
const baseOptions: JwtAuthOptions = {
  jwks: { keys: [key.publicJwk] },
  issuer,
  audience,
  failureCode: Code.Unauthenticated,
};

const bearer = (token: string) => `Bearer ${token}`;

/** A bearer header for a token of {@link subject}, with these claims. */
async function authorization(options: MintOptions = {}): Promise<string> {
  return bearer(await mint(key, { ...options, claims: { sub: subject, ...options.claims } }));
}

/** These claims and no default scope: for tests of claim shapes. */
const only = (claims: Record<string, unknown>): MintOptions =>
  "scope" in claims ? { claims } : { claims, omit: ["scope"] };

/** Wires createJwtAuth as a user would, recording every refusal in `denied`. */
function wire(options: Partial<JwtAuthOptions>, denied: DeniedEvent[]): ServerAuth {
  const auth = createJwtAuth({ ...baseOptions, ...options, onDenied: (e) => denied.push(e) });
  return { interceptors: [auth.interceptor], requestGate: auth.requestGate };
}

const insufficientScope = (scope: string) => `Bearer error="insufficient_scope", scope="${scope}"`;
const accessDenied = 'Bearer error="insufficient_scope"';

/** What a refusal must look like on the wire and to onDenied. */
interface Refusal {
  code: Code;
  message: string;
  challenge: string;
  reason: AuthErrorCode;
}

const missingToken: Refusal = {
  code: Code.Unauthenticated,
  message: "missing bearer token",
  challenge: "Bearer",
  reason: "ERR_TOKEN_MISSING",
};

const forbidden = (reason: AuthErrorCode, challenge: string): Refusal => ({
  code: Code.PermissionDenied,
  message: reason === "ERR_INSUFFICIENT_SCOPE" ? "insufficient scope" : "access denied",
  challenge,
  reason,
});

/** A refused call of a DemoService method, made with the shared `call` helper. */
interface Attempt {
  server: TestServer;
  denied: DeniedEvent[];
  transport: TransportKind;
  kind: CallKind;
  authorization: string | undefined;
}

async function assertAllowed(a: Attempt, expectedSubject = subject) {
  const before = a.server.calls.length;
  a.denied.length = 0;
  const outcome = await call(a.server.client(a.transport), a.kind, a.authorization);
  assert.deepEqual(outcome, { ok: true, subject: expectedSubject }, `${a.kind} was refused`);
  assert.deepEqual(
    a.server.calls.slice(before).map((c) => c.method),
    [methodOf[a.kind]],
  );
  assert.deepEqual(a.denied, []);
}

async function assertRefused(a: Attempt, refusal: Refusal) {
  const before = a.server.calls.length;
  a.denied.length = 0;
  const outcome = await call(a.server.client(a.transport), a.kind, a.authorization);
  assertRefusal(outcome, refusal, a.kind);
  assert.equal(a.server.calls.length, before, `${a.kind}: the handler ran`);
  assert.deepEqual(
    a.denied.map((e) => [e.reason, e.method, e.protocol]),
    [[refusal.reason, `${demo}/${methodOf[a.kind]}`, a.transport.protocol]],
    `${a.kind}: onDenied`,
  );
}

function assertRefusal(outcome: Outcome, refusal: Refusal, what: string) {
  assert.equal(outcome.ok, false, `${what} was let through`);
  if (outcome.ok) return;
  assert.equal(outcome.error.code, refusal.code, `${what}: code`);
  assert.equal(outcome.error.rawMessage, refusal.message, `${what}: message`);
  assert.equal(
    outcome.error.metadata.get("www-authenticate"),
    refusal.challenge,
    `${what}: challenge`,
  );
}

// ---------------------------------------------------------------------------
// 1. Every rule kind, allowed and refused, on every transport and kind of call.

/** What a `check` predicate was called with. */
interface Seen {
  claims: JwtClaims;
  call: CallInfo;
}

interface KindCase {
  name: string;
  rule: Rule;
  /** A token that meets the rule. */
  allowed: MintOptions;
  /** A valid token that does not. */
  refused: MintOptions;
  refusal: Refusal;
  /** The calls of the rule's `check`, if it has one. */
  seen?: Seen[];
}

const syncSeen: Seen[] = [];
const asyncSeen: Seen[] = [];

const kindCases: KindCase[] = [
  {
    name: "scopes (all of them)",
    rule: { scopes: ["notes:read", "notes:write"] },
    allowed: { claims: { scope: "chat notes:write notes:read" } },
    refused: { claims: { scope: "notes:read chat" } },
    refusal: forbidden("ERR_INSUFFICIENT_SCOPE", insufficientScope("notes:read notes:write")),
  },
  {
    name: "anyScopes",
    rule: { anyScopes: ["admin", "notes:write"] },
    allowed: { claims: { scope: "notes:write" } },
    refused: { claims: { scope: "notes:read chat" } },
    refusal: forbidden("ERR_INSUFFICIENT_SCOPE", insufficientScope("admin notes:write")),
  },
  {
    name: "roles (all of them)",
    rule: { roles: ["editor", "reviewer"] },
    allowed: { claims: { roles: ["reviewer", "editor"] } },
    refused: { claims: { roles: ["editor"] } },
    refusal: forbidden("ERR_ACCESS_DENIED", accessDenied),
  },
  {
    name: "anyRoles",
    rule: { anyRoles: ["admin", "moderator"] },
    allowed: { claims: { roles: ["moderator"] } },
    refused: { claims: { roles: ["editor", "viewer"] } },
    refusal: forbidden("ERR_ACCESS_DENIED", accessDenied),
  },
  {
    name: "claimEquals",
    rule: { claimEquals: { "org.tenant": "acme", email_verified: true } },
    allowed: { claims: { org: { tenant: "acme" }, email_verified: true } },
    refused: { claims: { org: { tenant: "acme" }, email_verified: "true" } },
    refusal: forbidden("ERR_ACCESS_DENIED", accessDenied),
  },
  {
    name: "claimIncludes",
    rule: { claimIncludes: { amr: "mfa" } },
    allowed: { claims: { amr: ["pwd", "mfa"] } },
    refused: { claims: { amr: ["pwd", "mfa-pending"] } },
    refusal: forbidden("ERR_ACCESS_DENIED", accessDenied),
  },
  {
    name: "check (sync)",
    rule: {
      check(claims, info) {
        syncSeen.push({ claims, call: info });
        return claims.tenant === "acme";
      },
    },
    allowed: { claims: { tenant: "acme" } },
    refused: { claims: { tenant: "other" } },
    refusal: forbidden("ERR_ACCESS_DENIED", accessDenied),
    seen: syncSeen,
  },
  {
    name: "check (async)",
    rule: {
      async check(claims, info) {
        asyncSeen.push({ claims, call: info });
        await sleep(1);
        return claims.tenant === "acme";
      },
    },
    allowed: { claims: { tenant: "acme" } },
    refused: { claims: { tenant: "other" } },
    refusal: forbidden("ERR_ACCESS_DENIED", accessDenied),
    seen: asyncSeen,
  },
  {
    name: "expr (CEL in code)",
    rule: {
      expr: "claims.tenant == 'acme' && 'notes:read' in scopes && method.startsWith('demo.v1.DemoService/')",
    },
    allowed: { claims: { tenant: "acme" } },
    refused: { claims: { tenant: "other" } },
    refusal: forbidden("ERR_ACCESS_DENIED", accessDenied),
  },
];

/** Checks what a `check` predicate saw of the one call just made. */
function assertSeen(seen: Seen[], before: number, kind: CallKind, auth: string, tenant: string) {
  const calls = seen.slice(before);
  assert.equal(calls.length, 1, "the check runs once per call");
  const { claims, call: info } = calls[0] as Seen;
  assert.equal(info.method, `${demo}/${methodOf[kind]}`);
  assert.equal(info.service, demo);
  assert.ok(info.headers instanceof Headers);
  assert.equal(info.headers.get("authorization"), auth);
  assert.equal(claims.sub, subject);
  assert.equal(claims.tenant, tenant);
  assert.ok(Object.isFrozen(claims));
}

describe("each rule kind, on every transport and kind of call", () => {
  for (const c of kindCases) {
    describe(c.name, () => {
      const denied: DeniedEvent[] = [];
      const server = useServer(() =>
        Promise.resolve(wire({ rules: { [`${demo}/*`]: c.rule } }, denied)),
      );
      for (const transport of transports) {
        describe(transport.name, () => {
          for (const kind of callKinds(transport)) {
            test(`${kind}: allowed, refused with PermissionDenied, or missing token`, async () => {
              const attempt = { server: server(), denied, transport, kind };
              const good = await authorization(c.allowed);
              const before = c.seen?.length ?? 0;
              await assertAllowed({ ...attempt, authorization: good });
              if (c.seen) assertSeen(c.seen, before, kind, good, "acme");

              const bad = await authorization(c.refused);
              const beforeRefused = c.seen?.length ?? 0;
              await assertRefused({ ...attempt, authorization: bad }, c.refusal);
              if (c.seen) assertSeen(c.seen, beforeRefused, kind, bad, "other");

              // Authentication failures keep the configured failureCode.
              await assertRefused({ ...attempt, authorization: undefined }, missingToken);
            });
          }
        });
      }
    });
  }

  describe("public", () => {
    const denied: DeniedEvent[] = [];
    const server = useServer(() =>
      Promise.resolve(wire({ rules: { [`${demo}/*`]: { public: true } } }, denied)),
    );
    for (const transport of transports) {
      describe(transport.name, () => {
        for (const kind of callKinds(transport)) {
          test(`${kind}: anonymous and valid tokens pass, an invalid token is refused`, async () => {
            const attempt = { server: server(), denied, transport, kind };
            await assertAllowed({ ...attempt, authorization: undefined }, "");
            assert.equal(server().calls.at(-1)?.claims, undefined);
            await assertAllowed({
              ...attempt,
              authorization: await authorization({ omit: ["scope"] }),
            });
            const expired = await authorization({
              claims: { exp: Math.floor(Date.now() / 1000) - 600 },
            });
            await assertRefused(
              { ...attempt, authorization: expired },
              {
                code: Code.Unauthenticated,
                message: "token expired",
                challenge: 'Bearer error="invalid_token"',
                reason: "ERR_TOKEN_EXPIRED",
              },
            );
          });
        }
      });
    }
  });
});

describe("a rule that fails while evaluating refuses the call", () => {
  const failing: { name: string; rule: Rule }[] = [
    {
      name: "check that throws",
      rule: {
        check() {
          throw new Error("boom");
        },
      },
    },
    {
      name: "async check that rejects",
      rule: {
        async check() {
          await sleep(1);
          throw new Error("boom");
        },
      },
    },
    { name: "CEL error at run time", rule: { expr: "claims.missing == 'x'" } },
    { name: "CEL error in a later operand", rule: { expr: "'chat' in scopes && 1 / 0 == 1" } },
  ];
  for (const f of failing) {
    describe(f.name, () => {
      const denied: DeniedEvent[] = [];
      const server = useServer(() =>
        Promise.resolve(wire({ rules: { [`${demo}/*`]: f.rule } }, denied)),
      );
      for (const transport of transports) {
        test(`${transport.name}: PermissionDenied with ERR_RULE_FAILED, never Internal`, async () => {
          for (const kind of callKinds(transport)) {
            await assertRefused(
              { server: server(), denied, transport, kind, authorization: await authorization() },
              forbidden("ERR_RULE_FAILED", accessDenied),
            );
          }
        });
      }
    });
  }
});

// ---------------------------------------------------------------------------
// 2. Claim shapes of the usual issuers: entries are matched whole, per token.

interface ShapeGroup {
  name: string;
  options?: Partial<JwtAuthOptions>;
  rule: Rule;
  tokens: [name: string, token: MintOptions, allowed: boolean][];
}

const shapeGroups: ShapeGroup[] = [
  {
    name: 'scopes: ["notes:read"]',
    rule: { scopes: ["notes:read"] },
    tokens: [
      ["Auth0 permissions array", only({ permissions: ["notes:read"] }), true],
      ["Auth0 scope string", only({ scope: "openid notes:read profile" }), true],
      ["Okta scp array", only({ scp: ["openid", "notes:read"] }), true],
      ["Entra scp string", only({ scp: "notes:read User.Read" }), true],
      ["no scope at all", only({}), false],
      ["notes:readwrite", only({ scope: "notes:readwrite" }), false],
      ["notes:read,notes:write is one odd token", only({ scope: "notes:read,notes:write" }), false],
      ["a different case", only({ scope: "NOTES:READ" }), false],
      ["a prefix of the scope", only({ scope: "notes:rea notes" }), false],
      ["the scope as a role", only({ roles: ["notes:read"] }), false],
      ["a scope of non-strings", only({ scope: [1, true, null, { "notes:read": true }] }), false],
      ["a scope object", only({ scope: { "notes:read": true } }), false],
      ["a nested array", only({ permissions: [["notes:read"]] }), false],
      ["the scope in an unknown claim", only({ scopes: "notes:read" }), false],
    ],
  },
  {
    name: 'scopes: ["admin"]',
    rule: { scopes: ["admin"] },
    tokens: [
      ["admin", only({ scope: "read admin" }), true],
      ["superadmin", only({ scope: "superadmin" }), false],
      ["admins", only({ scp: ["admins", "admin:read"] }), false],
    ],
  },
  {
    name: 'scopes: ["notes:read,notes:write"] (the odd token itself)',
    rule: { scopes: ["notes:read,notes:write"] },
    tokens: [
      ["one comma-joined token", only({ scope: "notes:read,notes:write" }), true],
      ["the two scopes", only({ scope: "notes:read notes:write" }), false],
    ],
  },
  {
    name: 'roles: ["admin"]',
    rule: { roles: ["admin"] },
    tokens: [
      ["roles array (Entra, generic)", only({ roles: ["viewer", "admin"] }), true],
      ["roles as a string is one role", only({ roles: "admin" }), true],
      ["Keycloak realm_access.roles", only({ realm_access: { roles: ["admin"] } }), true],
      [
        "Keycloak resource_access of the configured audience",
        only({ resource_access: { [audience]: { roles: ["admin"] } } }),
        true,
      ],
      [
        "Keycloak resource_access of ANOTHER client",
        only({
          resource_access: { "other-client": { roles: ["admin"] }, [audience]: { roles: [] } },
        }),
        false,
      ],
      ["groups", only({ groups: ["admin"] }), true],
      ["superadmin", only({ roles: ["superadmin"] }), false],
      ["roles string superadmin", only({ roles: "superadmin" }), false],
      ["a flat claim named realm_access.roles", only({ "realm_access.roles": ["admin"] }), false],
      ["the role as a scope", only({ scope: "admin" }), false],
      ["a roles object", only({ roles: { admin: true } }), false],
    ],
  },
  {
    name: "scopeClaims with a dot path",
    options: { scopeClaims: ["ext.perms"] },
    rule: { scopes: ["notes:read"] },
    tokens: [
      ["nested array", only({ ext: { perms: ["notes:read"] } }), true],
      ["nested string", only({ ext: { perms: "chat notes:read" } }), true],
      ["a flat claim named ext.perms", only({ "ext.perms": ["notes:read"] }), false],
    ],
  },
  {
    name: "roleClaims with a dot path",
    options: { roleClaims: ["app.access.roles"] },
    rule: { anyRoles: ["admin"] },
    tokens: [
      ["nested", only({ app: { access: { roles: ["admin"] } } }), true],
      ["one level short", only({ app: { access: ["admin"] } }), false],
    ],
  },
  {
    name: "roleClaims with a namespaced claim as an array path",
    options: { roleClaims: [["https://example.com/roles"]] },
    rule: { roles: ["admin"] },
    tokens: [
      ["namespaced claim", only({ "https://example.com/roles": ["admin"] }), true],
      ["namespaced claim, another role", only({ "https://example.com/roles": ["user"] }), false],
    ],
  },
];

describe("claim shapes", () => {
  for (const group of shapeGroups) {
    describe(group.name, () => {
      const denied: DeniedEvent[] = [];
      const server = useServer(() =>
        Promise.resolve(
          wire({ ...group.options, rules: { [`${demo}/WhoAmI`]: group.rule } }, denied),
        ),
      );
      for (const [name, token, allowed] of group.tokens) {
        test(`${name}: ${allowed ? "allowed" : "refused"}`, async () => {
          const auth = await authorization(token);
          for (const transport of transports) {
            const attempt = { server: server(), denied, transport, kind: "unary" as const };
            if (allowed) {
              await assertAllowed({ ...attempt, authorization: auth });
            } else {
              const scopeRule = group.rule.scopes ?? group.rule.anyScopes;
              await assertRefused(
                { ...attempt, authorization: auth },
                scopeRule
                  ? forbidden("ERR_INSUFFICIENT_SCOPE", insufficientScope(scopeRule.join(" ")))
                  : forbidden("ERR_ACCESS_DENIED", accessDenied),
              );
            }
          }
        });
      }
    });
  }
});

// ---------------------------------------------------------------------------
// 3. The rules DemoService declares in its .proto, with no rules in code.

describe("proto rules of DemoService", () => {
  const denied: DeniedEvent[] = [];
  const server = useServer(() => Promise.resolve(wire({}, denied)));
  const tooShort = forbidden("ERR_INSUFFICIENT_SCOPE", insufficientScope("notes:read"));

  for (const transport of transports) {
    describe(transport.name, () => {
      test("Ping is public: no token passes, a bad token does not", async () => {
        const client = server().client(transport);
        assert.equal((await client.ping({ text: "hi" })).subject, "");
        const headers = { authorization: await authorization({ omit: ["scope"] }) };
        assert.equal((await client.ping({}, { headers })).subject, subject);
        denied.length = 0;
        const forged = `${headers.authorization.slice(0, -4)}AAAA`;
        const error = await client.ping({}, { headers: { authorization: forged } }).then(
          () => assert.fail("a forged token reached Ping"),
          (err: unknown) => ConnectError.from(err),
        );
        assert.equal(error.code, Code.Unauthenticated);
        assert.equal(error.metadata.get("www-authenticate"), 'Bearer error="invalid_token"');
        assert.deepEqual(
          denied.map((e) => [e.reason, e.method]),
          [["ERR_SIGNATURE_INVALID", `${demo}/Ping`]],
        );
      });

      test("WhoAmI needs any valid token", async () => {
        const attempt = { server: server(), denied, transport, kind: "unary" as const };
        await assertRefused({ ...attempt, authorization: undefined }, missingToken);
        await assertAllowed({ ...attempt, authorization: await authorization(only({})) });
      });

      test("ListNotes needs notes:read", async () => {
        const attempt = { server: server(), denied, transport, kind: "server-streaming" as const };
        const without = await authorization({ claims: { scope: "notes:write chat" } });
        await assertRefused({ ...attempt, authorization: without }, tooShort);
        await assertRefused({ ...attempt, authorization: undefined }, missingToken);
        const withIt = await authorization({ claims: { scope: "notes:read" } });
        await assertAllowed({ ...attempt, authorization: withIt });
      });

      if (callKinds(transport).includes("bidi")) {
        test("UploadNotes needs notes:write", async () => {
          const attempt = {
            server: server(),
            denied,
            transport,
            kind: "client-streaming" as const,
          };
          const without = await authorization({ claims: { scope: "notes:read chat" } });
          await assertRefused(
            { ...attempt, authorization: without },
            forbidden("ERR_INSUFFICIENT_SCOPE", insufficientScope("notes:write")),
          );
          const withIt = await authorization({ claims: { scope: "notes:write" } });
          await assertAllowed({ ...attempt, authorization: withIt });
        });

        test("Chat: scope chat, or role moderator, else refused", async () => {
          const attempt = { server: server(), denied, transport, kind: "bidi" as const };
          await assertAllowed({
            ...attempt,
            authorization: await authorization(only({ scope: "chat" })),
          });
          await assertAllowed({
            ...attempt,
            authorization: await authorization(only({ scope: "notes:read", roles: ["moderator"] })),
          });
          await assertRefused(
            {
              ...attempt,
              authorization: await authorization(
                only({ scope: "notes:read chatter", roles: ["user"] }),
              ),
            },
            forbidden("ERR_ACCESS_DENIED", accessDenied),
          );
        });
      }
    });
  }
});

// ---------------------------------------------------------------------------
// Services without proto rules, built from a descriptor, for defaultRule,
// service options, assertRules and broken options.

type AccessRuleInit = MessageInitShape<typeof AccessRuleSchema>;

function methodProto(name: string, accessRule?: AccessRuleInit) {
  const options = create(MethodOptionsSchema);
  if (accessRule !== undefined) {
    setExtension(options, ruleOption, create(AccessRuleSchema, accessRule));
  }
  return { name, inputType: ".rules.v1.Msg", outputType: ".rules.v1.Msg", options };
}

function serviceOptions(accessRule: AccessRuleInit) {
  const options = create(ServiceOptionsSchema);
  setExtension(options, default_rule, create(AccessRuleSchema, accessRule));
  return options;
}

const registry = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "rules/v1/rules.proto",
    package: "rules.v1",
    syntax: "proto3",
    messageType: [
      {
        name: "Msg",
        field: [
          {
            name: "text",
            jsonName: "text",
            number: 1,
            type: FieldDescriptorProto_Type.STRING,
            label: FieldDescriptorProto_Label.OPTIONAL,
          },
        ],
      },
    ],
    service: [
      {
        // No service option; one method with a rule of its own.
        name: "PlainService",
        method: [
          methodProto("Plain"),
          methodProto("Tagged", { scopes: ["tagged"] }),
          methodProto("AlsoPlain"),
          methodProto("Coded"),
        ],
      },
      {
        name: "DefaultedService",
        options: serviceOptions({ roles: ["ops"] }),
        method: [methodProto("Inherits"), methodProto("Own", {}), methodProto("Coded")],
      },
      {
        name: "BrokenService",
        method: [
          methodProto("Broken", { expr: "scopes.((" }),
          methodProto("BadScope", { scopes: ['notes"read'] }),
          methodProto("Fine", {}),
        ],
      },
    ],
  }),
  () => undefined,
);

function service(typeName: string): DescService {
  const found = registry.getService(typeName);
  assert.ok(found, typeName);
  return found;
}

const PlainService = service("rules.v1.PlainService");
const DefaultedService = service("rules.v1.DefaultedService");
const BrokenService = service("rules.v1.BrokenService");

function methodNamed(svc: DescService, name: string): DescMethod {
  const found = svc.methods.find((m) => m.name === name);
  assert.ok(found, name);
  return found;
}

/** The built services declare unary methods only. */
function unary(method: DescMethod): DescMethodUnary {
  assert.equal(method.methodKind, "unary");
  return method as DescMethodUnary;
}

/** Serves these services (every method unary), recording the methods whose handler ran. */
function serveServices(
  services: DescService[],
  options: Partial<JwtAuthOptions>,
  denied: DeniedEvent[],
  reached: string[],
): ServerAuth {
  const { interceptors, requestGate } = wire(options, denied);
  const handler = connectNodeAdapter({
    routes(router) {
      for (const svc of services) {
        for (const method of svc.methods) {
          router.rpc(unary(method), (_req, ctx) => {
            reached.push(`${svc.typeName}/${method.name}`);
            return create(method.output, { text: getClaims(ctx)?.sub ?? "" });
          });
        }
      }
    },
    interceptors: interceptors ?? [],
    ...(requestGate ? { requestGate } : {}),
  });
  return { handler };
}

const clientTransports = new Map<string, Transport>();

function transportFor(kind: TransportKind, baseUrl: string): Transport {
  const id = `${baseUrl} ${kind.name}`;
  let transport = clientTransports.get(id);
  if (transport === undefined) {
    const options = { baseUrl, httpVersion: kind.httpVersion } as const;
    transport =
      kind.protocol === "connect"
        ? createConnectTransport(options)
        : kind.protocol === "grpc"
          ? createGrpcTransport(options)
          : createGrpcWebTransport(options);
    clientTransports.set(id, transport);
  }
  return transport;
}

/** One unary call of a descriptor-built method; never throws. */
async function callMethod(
  server: TestServer,
  kind: TransportKind,
  method: DescMethod,
  auth?: string,
): Promise<Outcome> {
  const header = auth === undefined ? {} : { authorization: auth };
  try {
    const res = await transportFor(kind, server.url).unary(
      unary(method),
      undefined,
      10_000,
      header,
      {
        text: "x",
      },
    );
    return { ok: true, subject: String((res.message as { text?: unknown }).text) };
  } catch (err) {
    return { ok: false, error: ConnectError.from(err, Code.Unknown) };
  }
}

interface MethodAttempt {
  server: TestServer;
  denied: DeniedEvent[];
  reached: string[];
  method: DescMethod;
  authorization: string | undefined;
}

async function assertMethodAllowed(a: MethodAttempt) {
  const name = `${a.method.parent.typeName}/${a.method.name}`;
  a.reached.length = 0;
  a.denied.length = 0;
  for (const transport of transports) {
    const outcome = await callMethod(a.server, transport, a.method, a.authorization);
    assert.deepEqual(outcome, { ok: true, subject }, `${name} over ${transport.name}`);
  }
  assert.equal(a.reached.length, transports.length);
  assert.ok(a.reached.every((m) => m === name));
  assert.deepEqual(a.denied, []);
}

async function assertMethodRefused(a: MethodAttempt, refusal: Refusal) {
  const name = `${a.method.parent.typeName}/${a.method.name}`;
  a.reached.length = 0;
  a.denied.length = 0;
  for (const transport of transports) {
    const outcome = await callMethod(a.server, transport, a.method, a.authorization);
    assertRefusal(outcome, refusal, `${name} over ${transport.name}`);
  }
  assert.deepEqual(a.reached, [], `${name}: the handler ran`);
  assert.deepEqual(
    a.denied.map((e) => [e.reason, e.method]),
    transports.map(() => [refusal.reason, name]),
  );
}

// ---------------------------------------------------------------------------
// 4. Precedence: code > method option > service option > defaultRule.

describe("precedence", () => {
  describe("a code rule beats the method option", () => {
    const denied: DeniedEvent[] = [];
    const server = useServer(() =>
      Promise.resolve(wire({ rules: { [`${demo}/ListNotes`]: { public: true } } }, denied)),
    );
    for (const transport of transports) {
      test(`${transport.name}: ListNotes turns public, WhoAmI keeps its proto rule`, async () => {
        const attempt = { server: server(), denied, transport, authorization: undefined };
        await assertAllowed({ ...attempt, kind: "server-streaming" }, "");
        await assertRefused({ ...attempt, kind: "unary" }, missingToken);
      });
    }
  });

  describe('a code "pkg.Service/*" beats the method options', () => {
    const denied: DeniedEvent[] = [];
    const server = useServer(() =>
      Promise.resolve(
        wire(
          {
            rules: {
              [`${demo}/*`]: { roles: ["admin"] },
              // An exact rule in code beats the wildcard in code.
              [`${demo}/WhoAmI`]: { scopes: ["special"] },
            },
          },
          denied,
        ),
      ),
    );
    for (const transport of transports) {
      test(`${transport.name}: the wildcard replaces the proto rules`, async () => {
        const client = server().client(transport);
        // Ping is public in its proto, not any more.
        denied.length = 0;
        const error = await client.ping({}).then(
          () => assert.fail("Ping stayed public"),
          (err: unknown) => ConnectError.from(err),
        );
        assert.equal(error.code, Code.Unauthenticated);
        assert.deepEqual(
          denied.map((e) => e.reason),
          ["ERR_TOKEN_MISSING"],
        );
        const attempt = { server: server(), denied, transport, kind: "server-streaming" as const };
        // ListNotes: notes:read (its proto rule) is not enough, and not needed.
        await assertRefused(
          { ...attempt, authorization: await authorization({ claims: { scope: "notes:read" } }) },
          forbidden("ERR_ACCESS_DENIED", accessDenied),
        );
        await assertAllowed({
          ...attempt,
          authorization: await authorization(only({ roles: ["admin"] })),
        });
        // WhoAmI: its own code rule, not the wildcard.
        const unary = { ...attempt, kind: "unary" as const };
        await assertRefused(
          { ...unary, authorization: await authorization(only({ roles: ["admin"] })) },
          forbidden("ERR_INSUFFICIENT_SCOPE", insufficientScope("special")),
        );
        await assertAllowed({
          ...unary,
          authorization: await authorization(only({ scope: "special" })),
        });
      });
    }
  });

  describe("a method option beats defaultRule", () => {
    const denied: DeniedEvent[] = [];
    const server = useServer(() =>
      Promise.resolve(wire({ defaultRule: { scopes: ["admin"] } }, denied)),
    );
    for (const transport of transports) {
      test(`${transport.name}: DemoService keeps its proto rules`, async () => {
        const client = server().client(transport);
        assert.equal((await client.ping({})).subject, "");
        const attempt = { server: server(), denied, transport };
        await assertAllowed({
          ...attempt,
          kind: "unary",
          authorization: await authorization(only({})),
        });
        await assertAllowed({
          ...attempt,
          kind: "server-streaming",
          authorization: await authorization(only({ scope: "notes:read" })),
        });
      });
    }
  });

  describe("defaultRule and service options, on services without method options", () => {
    const denied: DeniedEvent[] = [];
    const reached: string[] = [];
    const server = useServer(() =>
      Promise.resolve(
        serveServices(
          [PlainService, DefaultedService],
          {
            defaultRule: { roles: ["staff"] },
            rules: { "rules.v1.DefaultedService/Coded": { anyRoles: ["coder"] } },
          },
          denied,
          reached,
        ),
      ),
    );
    const attempt = (method: DescMethod, authorization: string | undefined): MethodAttempt => ({
      server: server(),
      denied,
      reached,
      method,
      authorization,
    });
    const withRoles = (roles: string[], scope?: string) =>
      authorization(only(scope === undefined ? { roles } : { roles, scope }));

    test("defaultRule applies to a method without any rule", async () => {
      const plain = methodNamed(PlainService, "Plain");
      await assertMethodAllowed(attempt(plain, await withRoles(["staff"])));
      await assertMethodRefused(
        attempt(plain, await withRoles(["ops"])),
        forbidden("ERR_ACCESS_DENIED", accessDenied),
      );
      await assertMethodRefused(attempt(plain, undefined), missingToken);
    });

    test("the method option beats defaultRule", async () => {
      const tagged = methodNamed(PlainService, "Tagged");
      await assertMethodAllowed(attempt(tagged, await withRoles([], "tagged")));
      await assertMethodRefused(
        attempt(tagged, await withRoles(["staff"])),
        forbidden("ERR_INSUFFICIENT_SCOPE", insufficientScope("tagged")),
      );
    });

    test("the service option beats defaultRule", async () => {
      const inherits = methodNamed(DefaultedService, "Inherits");
      await assertMethodAllowed(attempt(inherits, await withRoles(["ops"])));
      await assertMethodRefused(
        attempt(inherits, await withRoles(["staff"])),
        forbidden("ERR_ACCESS_DENIED", accessDenied),
      );
    });

    test("the method option beats the service option", async () => {
      await assertMethodAllowed(attempt(methodNamed(DefaultedService, "Own"), await withRoles([])));
    });

    test("a code rule beats the service option", async () => {
      const coded = methodNamed(DefaultedService, "Coded");
      await assertMethodAllowed(attempt(coded, await withRoles(["coder"])));
      await assertMethodRefused(
        attempt(coded, await withRoles(["ops", "staff"])),
        forbidden("ERR_ACCESS_DENIED", accessDenied),
      );
    });
  });

  describe("the default defaultRule is any valid token, never public", () => {
    const denied: DeniedEvent[] = [];
    const reached: string[] = [];
    const server = useServer(() =>
      Promise.resolve(serveServices([PlainService], {}, denied, reached)),
    );
    test("anonymous callers are refused, any valid token passes", async () => {
      const plain = methodNamed(PlainService, "Plain");
      const attempt = { server: server(), denied, reached, method: plain };
      await assertMethodRefused({ ...attempt, authorization: undefined }, missingToken);
      await assertMethodAllowed({ ...attempt, authorization: await authorization(only({})) });
    });
  });

  test("publicMethods and rules naming the same method is a TypeError", () => {
    for (const name of [`${demo}/Ping`, `${demo}/*`]) {
      assert.throws(
        () =>
          createJwtAuth({
            ...baseOptions,
            publicMethods: [name],
            rules: { [name]: { scopes: ["admin"] } },
          }),
        (err: unknown) => err instanceof TypeError && err.message.includes(name),
      );
    }
  });
});

// ---------------------------------------------------------------------------
// 5. assertRules, and a broken rule in a method option at run time.

describe("assertRules", () => {
  const auth = createJwtAuth(baseOptions);

  test("every DemoService method has an explicit rule", () => {
    auth.assertRules([DemoService], { requireExplicit: true });
    auth.assertRules([DemoService]);
  });

  test("requireExplicit lists every method that has no rule of its own", () => {
    const withCode = createJwtAuth({
      ...baseOptions,
      defaultRule: { roles: ["staff"] },
      rules: { "rules.v1.PlainService/Coded": {} },
    });
    assert.throws(
      () =>
        withCode.assertRules([DemoService, PlainService, DefaultedService], {
          requireExplicit: true,
        }),
      (err: unknown) => {
        assert.ok(err instanceof TypeError);
        assert.match(err.message, /rules\.v1\.PlainService\/Plain\b/);
        assert.match(err.message, /rules\.v1\.PlainService\/AlsoPlain\b/);
        // A rule in code, in the method's options or in the service's options is explicit.
        for (const explicit of [
          "PlainService/Coded",
          "PlainService/Tagged",
          "DefaultedService",
          "DemoService",
        ]) {
          assert.ok(!err.message.includes(explicit), `${explicit} was listed`);
        }
        return true;
      },
    );
    // Without requireExplicit, the defaultRule is rule enough.
    withCode.assertRules([PlainService, DefaultedService]);
  });

  test("a broken rule in a method option is named, with every other broken one", () => {
    for (const requireExplicit of [false, true]) {
      assert.throws(
        () => auth.assertRules([PlainService, BrokenService], { requireExplicit }),
        (err: unknown) => {
          assert.ok(err instanceof TypeError);
          assert.match(err.message, /rules\.v1\.BrokenService\/Broken\b/);
          assert.match(err.message, /rules\.v1\.BrokenService\/BadScope\b/);
          assert.ok(!err.message.includes("BrokenService/Fine"));
          assert.equal(err.message.includes("PlainService/Plain"), requireExplicit);
          return true;
        },
      );
    }
  });

  test("a code rule for the service hides its broken options", () => {
    const covered = createJwtAuth({
      ...baseOptions,
      rules: { "rules.v1.BrokenService/*": { roles: ["admin"] } },
    });
    covered.assertRules([BrokenService], { requireExplicit: true });
  });

  describe("at run time, a broken method option refuses its calls and nothing else", () => {
    const denied: DeniedEvent[] = [];
    const reached: string[] = [];
    const server = useServer(() =>
      Promise.resolve(serveServices([BrokenService], {}, denied, reached)),
    );
    test("Broken and BadScope are refused with ERR_RULE_FAILED, Fine still answers", async () => {
      const token = await authorization();
      const attempt = { server: server(), denied, reached, authorization: token };
      for (const round of [1, 2]) {
        for (const name of ["Broken", "BadScope"]) {
          const method = methodNamed(BrokenService, name);
          await assertMethodRefused(
            { ...attempt, method },
            forbidden("ERR_RULE_FAILED", accessDenied),
          );
          // onDenied learns why; the client does not.
          const cause = denied[0]?.error.cause;
          assert.ok(cause instanceof TypeError, `round ${round}: cause`);
          assert.ok(cause.message.includes(`rules.v1.BrokenService/${name}`));
        }
        await assertMethodAllowed({ ...attempt, method: methodNamed(BrokenService, "Fine") });
      }
    });
  });
});

// ---------------------------------------------------------------------------
// 6. Mistakes in code rules are TypeErrors that name the method key.

describe("construction errors in code rules", () => {
  const ping = `${demo}/Ping`;
  const cases: [name: string, rules: Record<string, unknown>, mentions: string][] = [
    ["a public rule with scopes", { [ping]: { public: true, scopes: ["admin"] } }, ping],
    ["a public rule with a check", { [ping]: { public: true, check: () => true } }, ping],
    ["a scope with a space", { [ping]: { scopes: ["notes read"] } }, ping],
    ["a scope with a quote", { [ping]: { scopes: ['notes"read'] } }, ping],
    ["an anyScopes entry with a backslash", { [ping]: { anyScopes: ["a\\b"] } }, ping],
    ["an empty scope", { [ping]: { scopes: [""] } }, ping],
    ["scopes as a string", { [ping]: { scopes: "notes:read" } }, ping],
    ["an empty role", { [ping]: { roles: [""] } }, ping],
    ["a broken expr", { [`${demo}/*`]: { expr: "scopes.((" } }, `${demo}/*`],
    ["a key with a leading slash", { [`/${ping}`]: {} }, `/${ping}`],
    ["a key without a method", { [demo]: {} }, demo],
    ["check not a function", { [ping]: { check: "yes" } }, ping],
    ["a rule that is not an object", { [ping]: "public" }, ping],
  ];
  for (const [name, rules, mentions] of cases) {
    test(name, () => {
      assert.throws(
        () => createJwtAuth({ ...baseOptions, rules: rules as Record<string, Rule> }),
        (err: unknown) => {
          assert.ok(err instanceof TypeError, String(err));
          assert.ok(err.message.includes(mentions), err.message);
          return true;
        },
      );
    });
  }

  test("a broken defaultRule is named too", () => {
    assert.throws(
      () => createJwtAuth({ ...baseOptions, defaultRule: { expr: "'a' in" } }),
      (err: unknown) => err instanceof TypeError && err.message.includes("defaultRule"),
    );
  });
});

describe("rules in code that guard nothing", () => {
  test("assertRules reports a rule key naming no method of the service", () => {
    const auth = createJwtAuth({
      ...baseOptions,
      rules: {
        "demo.v1.DemoService/ListNote": { scopes: ["notes:read"] },
        "demo.v1.DemoService/Chatt": { roles: ["moderator"] },
        "demo.v1.DemoService/*": {},
      },
    });
    assert.throws(
      () => auth.assertRules([DemoService]),
      (err: unknown) =>
        err instanceof TypeError &&
        err.message.includes(
          'rules["demo.v1.DemoService/ListNote"] names no method of demo.v1.DemoService',
        ) &&
        err.message.includes(
          'rules["demo.v1.DemoService/Chatt"] names no method of demo.v1.DemoService',
        ),
    );
  });

  test("a method named twice in publicMethods is fine; in publicMethods and rules it is not", () => {
    const twice = createJwtAuth({
      ...baseOptions,
      publicMethods: ["demo.v1.DemoService/Ping", "demo.v1.DemoService/Ping"],
    });
    twice.assertRules([DemoService], { requireExplicit: true });
    assert.throws(
      () =>
        createJwtAuth({
          ...baseOptions,
          publicMethods: ["demo.v1.DemoService/Ping"],
          rules: { "demo.v1.DemoService/Ping": {} },
        }),
      /in both publicMethods and rules/,
    );
  });
});
