import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { type Client, Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { calculateJwkThumbprint, exportJWK } from "jose";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { createDpopKeyPair, dpopAuth } from "../../src/client/index.js";
import { createJwtAuth, type JwtAuth } from "../../src/index.js";
import {
  cnfOf,
  dpopHeaders,
  generateDpopKey,
  htuOf,
  makeProof,
  publicOrigin,
} from "../helpers/dpop.js";
import { audience, generateTestKey, issuer, mint } from "../helpers/fixtures.js";
import {
  type CallKind,
  call,
  callKinds,
  gateAndInterceptor,
  transports,
  useServer,
} from "../helpers/server.js";

const signer = await generateTestKey("ES256");
const options = {
  jwks: { keys: [signer.publicJwk] },
  algorithms: ["ES256" as const],
  issuer,
  audience,
  dpop: { origins: [publicOrigin] },
};

describe("DPoP: a bound token with a fresh proof", () => {
  const server = useServer(() => gateAndInterceptor(options));
  for (const transport of transports) {
    for (const kind of callKinds(transport)) {
      test(`${transport.name}, ${kind}: admitted`, async () => {
        const key = await generateDpopKey();
        const token = await mint(signer, { claims: { ...cnfOf(key), sub: "bound" } });
        const proof = await makeProof(key, { token, htu: htuOf(kind as CallKind) });
        const outcome = await call(server().client(transport), kind, dpopHeaders(token, proof));
        assert.deepEqual(outcome, { ok: true, subject: "bound" });
      });
      test(`${transport.name}, ${kind}: a replayed proof is refused`, async () => {
        const key = await generateDpopKey();
        const token = await mint(signer, { claims: cnfOf(key) });
        const proof = await makeProof(key, { token, htu: htuOf(kind as CallKind) });
        const client = server().client(transport);
        assert.equal((await call(client, kind, dpopHeaders(token, proof))).ok, true);
        const outcome = await call(client, kind, dpopHeaders(token, proof));
        assert.equal(outcome.ok, false);
        if (!outcome.ok) {
          assert.equal(outcome.error.code, Code.PermissionDenied);
          assert.equal(
            outcome.error.metadata.get("www-authenticate"),
            'DPoP error="invalid_dpop_proof", algs="ES256 EdDSA PS256 RS256"',
          );
        }
      });
    }
  }
});

const algs = 'algs="ES256 EdDSA PS256 RS256"';

/** The refusal of an outcome, or a failed assertion. */
function refusalOf(outcome: Awaited<ReturnType<typeof call>>) {
  assert.equal(outcome.ok, false, "refused");
  if (outcome.ok) {
    throw new Error("unreachable");
  }
  return outcome.error;
}

/**
 * Makes a unary call whose first proof carries no nonce: refused, it hands out
 * a nonce, with which a second proof is admitted. Returns the nonce issued, the
 * one the admitted call's response carried, its subject and its headers.
 */
async function callWithIssuedNonce(client: Client<typeof DemoService>, sub: string) {
  const key = await generateDpopKey();
  const token = await mint(signer, { claims: { ...cnfOf(key), sub } });
  const refused = refusalOf(
    await call(client, "unary", dpopHeaders(token, await makeProof(key, { token }))),
  );
  const issued = refused.metadata.get("dpop-nonce") ?? "";
  const headers = dpopHeaders(token, await makeProof(key, { token, claims: { nonce: issued } }));
  let sent: string | null = null;
  const res = await client.whoAmI(
    {},
    {
      headers,
      onHeader: (h) => {
        sent = h.get("dpop-nonce");
      },
    },
  );
  return { issued, sent: sent as string | null, subject: res.subject, headers };
}

describe("DPoP beside Bearer (dpop.required false)", () => {
  const server = useServer(() => gateAndInterceptor(options));
  for (const transport of transports) {
    test(`${transport.name}: an unbound Bearer token still works`, async () => {
      const token = await mint(signer, { claims: { sub: "plain" } });
      const outcome = await call(server().client(transport), "unary", `Bearer ${token}`);
      assert.deepEqual(outcome, { ok: true, subject: "plain" });
    });
    test(`${transport.name}: a bound token sent as Bearer is refused`, async () => {
      const token = await mint(signer, { claims: cnfOf(await generateDpopKey()) });
      const error = refusalOf(await call(server().client(transport), "unary", `Bearer ${token}`));
      assert.equal(error.code, Code.PermissionDenied);
      assert.equal(error.metadata.get("www-authenticate"), `DPoP error="invalid_token", ${algs}`);
    });
    test(`${transport.name}: no credentials: both schemes are offered`, async () => {
      const error = refusalOf(await call(server().client(transport), "unary"));
      assert.equal(error.metadata.get("www-authenticate"), `Bearer, DPoP ${algs}`);
    });
    test(`${transport.name}: DPoP without a proof is refused`, async () => {
      const token = await mint(signer, { claims: cnfOf(await generateDpopKey()) });
      const error = refusalOf(
        await call(server().client(transport), "unary", { authorization: `DPoP ${token}` }),
      );
      assert.equal(
        error.metadata.get("www-authenticate"),
        `DPoP error="invalid_dpop_proof", ${algs}`,
      );
    });
    test(`${transport.name}: a public method answers without a token, not with a bad proof`, async () => {
      const client = server().client(transport);
      assert.equal((await client.ping({ text: "hi" })).text, "hi");
      const key = await generateDpopKey();
      const token = await mint(signer, { claims: cnfOf(key) });
      const proof = await makeProof(key, { token, htu: htuOf("unary") }); // made for WhoAmI
      await assert.rejects(client.ping({ text: "hi" }, { headers: dpopHeaders(token, proof) }), {
        code: Code.PermissionDenied,
      });
    });
  }
});

describe("DPoP required", () => {
  const server = useServer(() =>
    gateAndInterceptor({ ...options, dpop: { origins: [publicOrigin], required: true } }),
  );
  for (const transport of transports) {
    test(`${transport.name}: a Bearer token is refused, a bound token with its proof admitted`, async () => {
      const client = server().client(transport);
      const plain = await mint(signer);
      const error = refusalOf(await call(client, "unary", `Bearer ${plain}`));
      assert.equal(error.metadata.get("www-authenticate"), `DPoP error="invalid_token", ${algs}`);
      const missing = refusalOf(await call(client, "unary"));
      assert.equal(missing.metadata.get("www-authenticate"), `DPoP ${algs}`);
      const key = await generateDpopKey("EdDSA");
      const token = await mint(signer, { claims: { ...cnfOf(key), sub: "bound" } });
      const proof = await makeProof(key, { token, htu: htuOf("server-streaming") });
      const outcome = await call(client, "server-streaming", dpopHeaders(token, proof));
      assert.deepEqual(outcome, { ok: true, subject: "bound" });
    });
  }
});

describe("DPoP nonces", () => {
  const nonce = { secret: "the nonce secret of this test server, 32+ bytes" };
  const server = useServer(() =>
    gateAndInterceptor({ ...options, dpop: { origins: [publicOrigin], nonce } }),
  );
  for (const transport of transports) {
    for (const kind of ["unary", "server-streaming"] as const) {
      test(`${transport.name}, ${kind}: use_dpop_nonce hands out a nonce that then works`, async () => {
        const key = await generateDpopKey();
        const token = await mint(signer, { claims: { ...cnfOf(key), sub: "nonced" } });
        const client = server().client(transport);
        const first = await makeProof(key, { token, htu: htuOf(kind) });
        const error = refusalOf(await call(client, kind, dpopHeaders(token, first)));
        assert.equal(error.code, Code.PermissionDenied);
        assert.equal(
          error.metadata.get("www-authenticate"),
          `DPoP error="use_dpop_nonce", ${algs}`,
        );
        const issued = error.metadata.get("dpop-nonce") ?? "";
        assert.match(issued, /^[A-Za-z0-9_-]{43}$/);
        const forged = await makeProof(key, { token, htu: htuOf(kind), claims: { nonce: "x" } });
        assert.equal((await call(client, kind, dpopHeaders(token, forged))).ok, false);
        const second = await makeProof(key, { token, htu: htuOf(kind), claims: { nonce: issued } });
        assert.deepEqual(await call(client, kind, dpopHeaders(token, second)), {
          ok: true,
          subject: "nonced",
        });
      });
    }
    test(`${transport.name}: an admitted call's response carries the current nonce`, async () => {
      const client = server().client(transport);
      const { issued, sent } = await callWithIssuedNonce(client, "nonced");
      assert.equal(sent, issued);
    });
  }
});

describe("DPoP through the interceptor alone (Connect < 2.2)", () => {
  const nonce = { secret: "the nonce secret of this test server, 32+ bytes" };
  const server = useServer(() => ({
    interceptors: [
      createJwtAuth({ ...options, dpop: { origins: [publicOrigin], nonce } }).interceptor,
    ],
  }));
  for (const transport of transports) {
    test(`${transport.name}: nonce, admission and replay`, async () => {
      const client = server().client(transport);
      const { issued, sent, subject, headers } = await callWithIssuedNonce(client, "intercepted");
      assert.equal(subject, "intercepted");
      assert.equal(sent, issued);
      assert.equal((await call(client, "unary", headers)).ok, false, "replay");
    });
  }
});

describe("DPoP and the Connect protocol's GET requests", () => {
  const server = useServer(() => gateAndInterceptor(options));
  test("a GET call's proof says htm GET; a POST proof is refused on it", async () => {
    const transport = createConnectTransport({
      baseUrl: server().url,
      httpVersion: "1.1",
      useHttpGet: true,
    });
    const client = createClient(DemoService, transport);
    const key = await generateDpopKey();
    const token = await mint(signer, { claims: { ...cnfOf(key), sub: "got" } });
    const get = await makeProof(key, { token, htm: "GET" });
    const res = await client.whoAmI({}, { headers: dpopHeaders(token, get) });
    assert.equal(res.subject, "got");
    const post = await makeProof(key, { token, htm: "POST" });
    await assert.rejects(client.whoAmI({}, { headers: dpopHeaders(token, post) }), {
      code: Code.PermissionDenied,
    });
  });
});

describe("dpopAuth (connect-jwt/client) against the server", () => {
  for (const nonce of [undefined, { secret: "the nonce secret of this test server, 32+ bytes" }]) {
    describe(nonce === undefined ? "nonces off" : "nonces on", () => {
      // The server answers as the address it listens on, known once it listens.
      let auth: JwtAuth | undefined;
      const late = () => {
        if (auth === undefined) {
          throw new Error("the auth is made once the server listens");
        }
        return auth;
      };
      const server = useServer({
        interceptors: [(next) => (req) => late().interceptor(next)(req)],
        requestGate: (ctx) => late().requestGate(ctx),
      });
      before(() => {
        auth = createJwtAuth({
          ...options,
          dpop: { origins: [server().url], required: true, ...(nonce ? { nonce } : {}) },
        });
      });
      for (const transport of transports) {
        for (const kind of callKinds(transport)) {
          test(`${transport.name}, ${kind}: admitted, twice`, async () => {
            const keyPair = await createDpopKeyPair();
            const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey));
            const token = await mint(signer, { claims: { cnf: { jkt }, sub: "dpop-client" } });
            const client = server().client(transport, [dpopAuth(token, { keyPair })]);
            // Nonces on: the first unary call is refused for its nonce and
            // retried once; a first stream is not retried, the next call has it.
            const first = await call(client, kind);
            if (nonce === undefined || kind === "unary") {
              assert.deepEqual(first, { ok: true, subject: "dpop-client" });
            } else {
              assert.equal(
                refusalOf(first).metadata.get("www-authenticate")?.includes("use_dpop_nonce"),
                true,
              );
            }
            assert.deepEqual(await call(client, kind), { ok: true, subject: "dpop-client" });
          });
        }
      }
    });
  }
});
