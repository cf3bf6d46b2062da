import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createJwtAuth, type DeniedEvent } from "../../../src/index.js";
import {
  methodOf,
  type TestServer,
  type TransportKind,
  transports,
  useServer,
} from "../../helpers/server.js";
import { subject, tenant } from "./cases.js";
import {
  type DpopAttackCase,
  type DpopCaseContext,
  type DpopExpected,
  type DpopServerName,
  dpopAttackCases,
  dpopSecrets,
  dpopServerOptions,
  dpopWireOf,
  nonceOfWindow,
  nonceWindow,
} from "./dpop-cases.js";
import { assertNoLeakOnWire } from "./leaks.js";
import { type RawCallKind, type RawField, rawCall } from "./raw-client.js";

// The DPoP attack battery: every case of dpop-cases.ts against its server (DPoP
// optional, required, with nonces, with a failing or a full replay store), on
// every transport (Connect, gRPC and gRPC-Web, over HTTP/1.1 and HTTP/2), as a
// unary call and a server stream. A refusal must carry the exact code, the
// fixed message, the challenge and the onDenied reason; the handler must not
// run; nothing of the token, the proof or the replay store's failure may come
// back.

/** What one call came back with, from the Connect client or the raw one. */
type Answer =
  | { ok: true; metadata: Headers }
  | {
      ok: false;
      /** `null`: no RPC answer. */
      code: Code | null;
      message: string | undefined;
      metadata: Headers;
      /** Everything the client can see, for the leak check. */
      wire: string;
    };

async function send(
  server: TestServer,
  transport: TransportKind,
  kind: RawCallKind,
  fields: readonly RawField[],
  raw: boolean,
): Promise<Answer> {
  if (raw) {
    const answer = await rawCall(server.url, transport, kind, fields);
    if (answer.code === undefined && answer.status === 200) {
      return { ok: true, metadata: answer.metadata };
    }
    return {
      ok: false,
      code: answer.code ?? null,
      message: answer.message,
      metadata: answer.metadata,
      wire: answer.wire,
    };
  }
  const headers = Object.fromEntries(fields.map(([name, value]) => [name, String(value)]));
  const metadata = new Headers();
  const collect = (h: Headers) => {
    for (const [name, value] of h) metadata.append(name, value);
  };
  const options = { headers, timeoutMs: 10_000, onHeader: collect, onTrailer: collect };
  const client = server.client(transport);
  try {
    if (kind === "unary") {
      await client.whoAmI({}, options);
    } else {
      for await (const _ of client.listNotes({}, options)) {
        // Read the whole stream.
      }
    }
    return { ok: true, metadata };
  } catch (err) {
    const error = ConnectError.from(err, Code.Unknown);
    return {
      ok: false,
      code: error.code,
      message: error.rawMessage,
      metadata: error.metadata,
      wire: `${error.message}\n${JSON.stringify([...error.metadata])}`,
    };
  }
}

interface Run {
  readonly server: TestServer;
  readonly serverName: DpopServerName;
  readonly denied: DeniedEvent[];
  readonly transport: TransportKind;
  readonly state: Map<string, unknown>;
}

/** Makes one call and checks its answer against `expected`; returns the `dpop-nonce` it got. */
async function check(
  run: Run,
  what: string,
  kind: RawCallKind,
  fields: readonly RawField[],
  expected: DpopExpected,
  raw: boolean,
): Promise<string | null> {
  const { server, serverName, denied, transport } = run;
  const method = `demo.v1.DemoService/${methodOf[kind]}`;
  const calls = server.calls.length;
  denied.length = 0;
  const window = nonceWindow();
  const answer = await send(server, transport, kind, fields, raw);
  const seen = server.calls.slice(calls);
  const nonce = answer.metadata.get("dpop-nonce");
  const isDpop = fields.some(([n, v]) => n === "authorization" && /^DPoP /.test(String(v)));

  if ("accepted" in expected) {
    assert.equal(answer.ok, true, `${what}: refused ${JSON.stringify(answer)}`);
    assert.equal(seen.length, 1, `${what}: the handler did not run once`);
    assert.equal(`demo.v1.DemoService/${seen[0]?.method}`, method, `${what}: method`);
    assert.equal(seen[0]?.claims?.sub, subject, `${what}: claims`);
    assert.deepEqual(denied, [], `${what}: onDenied`);
    if (serverName === "nonce" && isDpop) {
      // An admitted DPoP call learns the nonce for its next proof.
      assert.ok(nonce !== null, `${what}: no DPoP-Nonce for the next proof`);
      assert.ok([window, window + 1].map(nonceOfWindow).includes(nonce), `${what}: DPoP-Nonce`);
    }
    return nonce;
  }
  assert.equal(answer.ok, false, `${what}: let through`);
  if (answer.ok) return nonce;
  assert.deepEqual(seen, [], `${what}: the handler ran`);
  const { message, code, challenge } = dpopWireOf(expected.reason, serverName);
  assert.deepEqual(
    {
      code: answer.code === null ? null : Code[answer.code],
      message: answer.message,
      challenge: answer.metadata.get("www-authenticate"),
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
  if (expected.reason === "ERR_DPOP_NONCE_REQUIRED") {
    assert.ok(
      nonce !== null && [window, window + 1].map(nonceOfWindow).includes(nonce),
      `${what}: the refusal must carry the current nonce, got ${nonce}`,
    );
  } else {
    assert.equal(nonce, null, `${what}: a DPoP-Nonce on a refusal that does not ask for one`);
  }
  assertNoLeakOnWire(
    answer.wire,
    fields.map(([, v]) => String(v)),
    [subject, tenant, ...dpopSecrets],
    [message, challenge ?? "", nonce ?? ""],
  );
  return nonce;
}

/** Runs one case as one call of `kind`, after the calls it sets up. */
async function runCase(run: Run, c: DpopAttackCase, kind: RawCallKind): Promise<void> {
  const what = `${c.name} [${run.transport.name}, ${kind}]`;
  let setup = 0;
  const ctx: DpopCaseContext = {
    transport: run.transport,
    kind,
    serverUrl: run.server.url,
    state: run.state,
    expectCall: (fields, expected, callKind = kind) =>
      check(run, `${what}, setup call ${++setup}`, callKind, fields, expected, c.raw === true),
  };
  const fields = await c.fields(ctx);
  await check(run, what, kind, fields, c.expect, c.raw === true);
}

const kinds = ["unary", "server-streaming"] as const;
const serverNames = [...new Set(dpopAttackCases.map((c) => c.server))];

for (const serverName of serverNames) {
  describe(`DPoP attack battery: ${serverName} server`, () => {
    const denied: DeniedEvent[] = [];
    const state = new Map<string, unknown>();
    const server = useServer(() => {
      const auth = createJwtAuth(
        dpopServerOptions(serverName, { onDenied: (e) => denied.push(e) }),
      );
      return { interceptors: [auth.interceptor], requestGate: auth.requestGate };
    });
    for (const c of dpopAttackCases.filter((c) => c.server === serverName)) {
      describe(c.name, () => {
        for (const transport of transports) {
          test(transport.name, async () => {
            const run = { server: server(), serverName, denied, transport, state };
            for (const kind of kinds) {
              await runCase(run, c, kind);
            }
          });
        }
      });
    }
  });
}

// The interceptor alone (no request gate) reads the HTTP method and URL from
// another place: every case again, on one transport of each protocol.
describe("DPoP attack battery, interceptor only", () => {
  for (const serverName of serverNames) {
    describe(`${serverName} server`, () => {
      const denied: DeniedEvent[] = [];
      const state = new Map<string, unknown>();
      const server = useServer(() => {
        const options = dpopServerOptions(serverName, { onDenied: (e) => denied.push(e) });
        return { interceptors: [createJwtAuth(options).interceptor] };
      });
      const oneOfEach = transports.filter((t) => t.httpVersion === "2");
      for (const c of dpopAttackCases.filter((c) => c.server === serverName)) {
        test(c.name, async () => {
          for (const transport of oneOfEach) {
            const run = { server: server(), serverName, denied, transport, state };
            for (const kind of kinds) {
              await runCase(run, c, kind);
            }
          }
        });
      }
    });
  }
});

test("the battery holds at least 30 DPoP cases, on every server", () => {
  assert.ok(dpopAttackCases.length >= 30, String(dpopAttackCases.length));
  assert.deepEqual(serverNames.sort(), [
    "full-store",
    "nonce",
    "optional",
    "required",
    "throwing-store",
  ]);
});
