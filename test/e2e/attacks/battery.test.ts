import * as assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createJwtAuth, type DeniedEvent } from "../../../src/index.js";
import {
  call,
  methodOf,
  type TestServer,
  type TransportKind,
  transports,
  useServer,
} from "../../helpers/server.js";
import {
  type AttackCase,
  adminMethod,
  attackCases,
  type CaseContext,
  claims,
  type Expected,
  serverOptions,
  subject,
  tenant,
  token,
  wireOf,
} from "./cases.js";
import { assertNoLeakOnWire } from "./leaks.js";
import { rawCall } from "./raw-client.js";

// The attack battery: every named case of cases.ts, on every transport
// (Connect, gRPC and gRPC-Web, over HTTP/1.1 and HTTP/2), as a unary call and
// a server stream. A refusal must carry the exact code, the fixed message, the
// challenge and the onDenied reason; the handler must not run; nothing of the
// token or its claims may come back.

/** Counts requests: a server that fetched a key named in a token header would show here. */
const spy = { hits: 0, url: "", server: http.createServer() };
before(async () => {
  spy.server.on("request", (_req, res) => {
    spy.hits++;
    res.end("{}");
  });
  await new Promise<void>((resolve) => spy.server.listen(0, "127.0.0.1", resolve));
  spy.url = `http://127.0.0.1:${(spy.server.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise((resolve) => spy.server.close(resolve));
});
const context = (): CaseContext => ({ spyUrl: spy.url });

const streamKind = "server-streaming" as const;

/** The call kinds a case runs as: unary and a server stream, or unary alone for Ping. */
function kindsOf(c: AttackCase): ("unary" | "server-streaming")[] {
  return c.target === "admin" ? ["unary"] : ["unary", streamKind];
}

/** What one call came back with, from the Connect client or the raw one. */
type Answer =
  | { ok: true }
  | {
      ok: false;
      /** `null`: no RPC answer (refused by the HTTP layer). */
      code: Code | null;
      message: string | undefined;
      challenge: string | null;
      httpStatus: number | undefined;
      /** Everything the client can see, for the leak check. */
      wire: string;
    };

async function send(
  server: TestServer,
  c: AttackCase,
  transport: TransportKind,
  kind: "unary" | "server-streaming",
  values: readonly string[],
): Promise<Answer> {
  if (c.raw === true || values.length > 1) {
    assert.notEqual(c.target, "admin", "the raw client calls the battery's methods only");
    const fields = values.map((v) => ["authorization", v] as const);
    const answer = await rawCall(server.url, transport, kind, fields);
    if (answer.code === undefined && answer.status === 200) return { ok: true };
    return {
      ok: false,
      code: answer.code ?? null,
      message: answer.message,
      challenge: answer.metadata.get("www-authenticate"),
      httpStatus: answer.status,
      wire: answer.wire,
    };
  }
  const client = server.client(transport);
  const authorization = values[0];
  let error: ConnectError;
  if (c.target === "admin") {
    try {
      const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
      await client.ping({}, { headers, timeoutMs: 10_000 });
      return { ok: true };
    } catch (err) {
      error = ConnectError.from(err, Code.Unknown);
    }
  } else {
    const outcome = await call(client, kind, authorization);
    if (outcome.ok) return { ok: true };
    error = outcome.error;
  }
  return {
    ok: false,
    code: error.code,
    message: error.rawMessage,
    challenge: error.metadata.get("www-authenticate"),
    httpStatus: undefined,
    wire: `${error.message}\n${JSON.stringify([...error.metadata])}`,
  };
}

/** Runs one case as one call and checks the answer against what the case expects. */
async function runCase(
  server: TestServer,
  denied: DeniedEvent[],
  c: AttackCase,
  transport: TransportKind,
  kind: "unary" | "server-streaming",
  failureCode: Code,
): Promise<void> {
  const values = await c.authorization(context());
  const expected: Expected = typeof c.expect === "function" ? c.expect(transport) : c.expect;
  const method = c.target === "admin" ? adminMethod : `demo.v1.DemoService/${methodOf[kind]}`;
  const what = `${c.name} [${transport.name}, ${kind}]`;
  const calls = server.calls.length;
  denied.length = 0;
  const answer = await send(server, c, transport, kind, values);
  const seen = server.calls.slice(calls);

  if ("accepted" in expected) {
    assert.equal(answer.ok, true, `${what}: refused ${JSON.stringify(answer)}`);
    assert.equal(seen.length, 1, `${what}: the handler did not run once`);
    assert.equal(`demo.v1.DemoService/${seen[0]?.method}`, method, `${what}: method`);
    assert.equal(seen[0]?.claims?.sub, subject, `${what}: claims`);
    assert.deepEqual(denied, [], `${what}: onDenied`);
    const claimsSeen = seen[0]?.claims;
    if (expected.check !== undefined && claimsSeen !== undefined) expected.check(claimsSeen);
    return;
  }
  assert.equal(answer.ok, false, `${what}: let through`);
  if (answer.ok) return;
  assert.deepEqual(seen, [], `${what}: the handler ran`);
  if ("httpStatus" in expected) {
    assert.deepEqual(
      { httpStatus: answer.httpStatus, code: answer.code, denied: denied.length },
      { httpStatus: expected.httpStatus, code: null, denied: 0 },
      `${what}: the HTTP layer should refuse this`,
    );
    assertNoLeakOnWire(answer.wire, values, [subject, tenant]);
    return;
  }
  const { message, challenge } = wireOf(expected.reason);
  const code = expected.reason === "ERR_INSUFFICIENT_SCOPE" ? Code.PermissionDenied : failureCode;
  assert.deepEqual(
    {
      code: answer.code === null ? null : Code[answer.code],
      message: answer.message,
      challenge: answer.challenge,
      denied: denied.map((e) => [e.reason, e.method, e.protocol]),
    },
    {
      code: Code[code],
      message,
      challenge,
      denied: [[expected.reason, method, transport.protocol]],
    },
    what,
  );
  assertNoLeakOnWire(answer.wire, values, [subject, tenant], [message, challenge]);
}

function gateAndInterceptor(denied: DeniedEvent[], failureCode?: Code) {
  const auth = createJwtAuth(
    serverOptions({
      onDenied: (e) => denied.push(e),
      ...(failureCode === undefined ? {} : { failureCode }),
    }),
  );
  return { interceptors: [auth.interceptor], requestGate: auth.requestGate };
}

describe("attack battery (failureCode left at PermissionDenied)", () => {
  const denied: DeniedEvent[] = [];
  const server = useServer(() => Promise.resolve(gateAndInterceptor(denied)));

  for (const c of attackCases) {
    describe(`${c.group}: ${c.name}`, () => {
      for (const transport of transports) {
        test(transport.name, async () => {
          for (const kind of kindsOf(c)) {
            await runCase(server(), denied, c, transport, kind, Code.PermissionDenied);
          }
        });
      }
    });
  }

  describe("claims: a 1 MiB payload", () => {
    for (const transport of transports) {
      test(`${transport.name}: refused (by the size cap or the HTTP layer); the server stays up`, async () => {
        const huge = `Bearer ${token(undefined, claims({ pad: "x".repeat(1 << 20) }))}`;
        for (const kind of ["unary", streamKind] as const) {
          const calls = server().calls.length;
          denied.length = 0;
          // A fresh client: the HTTP layer may end the connection.
          const outcome = await call(server().client(transport, []), kind, huge);
          const what = `${transport.name}, ${kind}`;
          assert.equal(outcome.ok, false, `${what}: let through`);
          assert.equal(server().calls.length, calls, `${what}: the handler ran`);
          assert.ok(
            denied.every((e) => e.reason === "ERR_TOKEN_TOO_LARGE"),
            `${what}: ${denied.map((e) => e.reason).join()}`,
          );
          if (!outcome.ok && denied.length > 0) {
            assert.equal(outcome.error.code, Code.PermissionDenied, what);
            assert.equal(outcome.error.rawMessage, "invalid token", what);
            assert.equal(
              outcome.error.metadata.get("www-authenticate"),
              'Bearer error="invalid_token"',
              what,
            );
          }
          if (!outcome.ok) {
            const wire = `${outcome.error.message}\n${JSON.stringify([...outcome.error.metadata])}`;
            assertNoLeakOnWire(wire, [huge], [subject, tenant]);
          }
          const normal = await call(server().client(transport), kind, `Bearer ${token()}`);
          assert.deepEqual(normal, { ok: true, subject }, `${what}: the server is not answering`);
        }
      });
    }
  });
});

describe("attack battery with failureCode: Code.Unauthenticated, interceptor only", () => {
  const denied: DeniedEvent[] = [];
  const server = useServer(() => {
    const { interceptors } = gateAndInterceptor(denied, Code.Unauthenticated);
    return Promise.resolve({ interceptors });
  });
  const transport = transports.find((t) => t.protocol === "grpc") as TransportKind;
  for (const c of attackCases) {
    test(`${transport.name}: ${c.group}: ${c.name}`, async () => {
      for (const kind of kindsOf(c)) {
        await runCase(server(), denied, c, transport, kind, Code.Unauthenticated);
      }
    });
  }
});

test("no key named in a token header (`jku`, `x5u`) was ever fetched", () => {
  assert.equal(spy.hits, 0);
});
