import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import * as dpop from "dpop";
import * as oauth from "oauth4webapi";
import { dpopHeaders, htuOf, publicOrigin } from "../helpers/dpop.js";
import { audience, generateTestKey, issuer, mint } from "../helpers/fixtures.js";
import {
  call,
  gateAndInterceptor,
  type TestServer,
  type TransportKind,
  transports,
  useServer,
} from "../helpers/server.js";

// DPoP proofs made by clients nobody here wrote, against our server: panva's
// `dpop` package, and oauth4webapi's DPoP handle (which also keeps the nonces
// a server hands out). Each on Connect, gRPC and gRPC-Web, unary and server
// streaming, with nonces off and on.

const signer = await generateTestKey("ES256");
/** The algorithms the peers sign with, as they name them (Ed25519 is RFC 9864's fully-specified name). */
const algorithms = ["ES256", "Ed25519", "PS256"] as const;
const algs = `algs="${algorithms.join(" ")}"`;
const kinds = ["unary", "server-streaming"] as const;
type Kind = (typeof kinds)[number];

function serverOptions(nonces: boolean) {
  return {
    jwks: { keys: [signer.publicJwk] },
    algorithms: ["ES256" as const],
    issuer,
    audience,
    dpop: {
      origins: [publicOrigin],
      algorithms: [...algorithms],
      ...(nonces ? { nonce: { secret: randomBytes(32) } } : {}),
    },
  };
}

/** A token bound to the key whose thumbprint is `jkt`. */
const boundToken = (jkt: string, sub: string) => mint(signer, { claims: { cnf: { jkt }, sub } });

/** Asserts that `outcome` is the refusal that asks for a nonce, and returns the nonce. */
function nonceOf(outcome: Awaited<ReturnType<typeof call>>, what: string): string {
  assert.equal(outcome.ok, false, `${what}: admitted without a nonce`);
  if (outcome.ok) throw new Error("unreachable");
  assert.equal(outcome.error.code, Code.PermissionDenied, what);
  assert.equal(outcome.error.rawMessage, "DPoP nonce required", what);
  assert.equal(
    outcome.error.metadata.get("www-authenticate"),
    `DPoP error="use_dpop_nonce", ${algs}`,
    what,
  );
  const nonce = outcome.error.metadata.get("dpop-nonce");
  assert.ok(nonce, `${what}: no DPoP-Nonce`);
  return nonce;
}

for (const nonces of [false, true]) {
  describe(`panva's dpop package, nonces ${nonces ? "on" : "off"}`, () => {
    const server = useServer(() => gateAndInterceptor(serverOptions(nonces)));
    for (const alg of ["ES256", "Ed25519"] as const) {
      for (const transport of transports) {
        test(`${alg}, ${transport.name}: unary and server streaming admitted`, async () => {
          const keyPair = await dpop.generateKeyPair(alg);
          const token = await boundToken(await dpop.calculateThumbprint(keyPair.publicKey), alg);
          const client = server().client(transport);
          for (const kind of kinds) {
            const what = `${alg}, ${transport.name}, ${kind}`;
            const proof = (nonce?: string) =>
              dpop.generateProof(keyPair, htuOf(kind), "POST", nonce, token);
            let nonce: string | undefined;
            if (nonces) {
              nonce = nonceOf(await call(client, kind, dpopHeaders(token, await proof())), what);
            }
            const outcome = await call(client, kind, dpopHeaders(token, await proof(nonce)));
            assert.deepEqual(outcome, { ok: true, subject: alg }, what);
          }
        });
      }
    }
  });
}

/**
 * What oauth4webapi's requests go through: a real fetch to the server for
 * the Connect protocol's unary calls (a plain POST of JSON), and, for every
 * transport, a fetch that makes the call with our client for that transport,
 * with the peer's `authorization` and `dpop` headers, and answers it as an
 * HTTP resource server would (401 with the challenge and `DPoP-Nonce`).
 */
function fetchFor(server: TestServer, route: "connect-json" | TransportKind) {
  return async (
    url: string,
    init: oauth.CustomFetchOptions<string, oauth.ProtectedResourceRequestBody>,
  ): Promise<Response> => {
    const target = url.replace(publicOrigin, server.url);
    if (route === "connect-json") return fetch(target, init as RequestInit);
    const headers = new Headers(init.headers);
    const callHeaders = {
      authorization: headers.get("authorization") ?? "",
      dpop: headers.get("dpop") ?? "",
    };
    const answer = new Headers();
    const options = {
      headers: callHeaders,
      timeoutMs: 10_000,
      onHeader: (h: Headers) => {
        for (const [name, value] of h) answer.append(name, value);
      },
    };
    const client = server.client(route);
    try {
      let subject: string;
      if (url.endsWith("/WhoAmI")) {
        subject = (await client.whoAmI({}, options)).subject;
      } else {
        const owners = new Set<string>();
        for await (const res of client.listNotes({}, options)) owners.add(res.note?.owner ?? "");
        subject = [...owners].join(",");
      }
      return Response.json({ subject }, { headers: answer });
    } catch (err) {
      const error = ConnectError.from(err, Code.Unknown);
      return Response.json({ code: Code[error.code] }, { status: 401, headers: error.metadata });
    }
  };
}

/**
 * Calls the method of `kind` through oauth4webapi with its DPoP handle,
 * retrying once when the server asks for a nonce (oauth4webapi keeps the nonce
 * from the refusal); returns the subject and whether a retry was needed.
 */
async function peerCall(
  handle: oauth.DPoPHandle,
  token: string,
  kind: Kind,
  fetchImpl: ReturnType<typeof fetchFor>,
): Promise<{ subject: string; retried: boolean }> {
  const request = () =>
    oauth.protectedResourceRequest(
      token,
      "POST",
      new URL(htuOf(kind)),
      new Headers({ "content-type": "application/json" }),
      "{}",
      { DPoP: handle, [oauth.customFetch]: fetchImpl },
    );
  let retried = false;
  let response: Response;
  try {
    response = await request();
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    retried = true;
    response = await request();
  }
  assert.equal(response.status, 200);
  const { subject } = (await response.json()) as { subject: string };
  return { subject, retried };
}

for (const nonces of [false, true]) {
  describe(`oauth4webapi's DPoP handle, nonces ${nonces ? "on" : "off"}`, () => {
    const server = useServer(() => gateAndInterceptor(serverOptions(nonces)));
    // oauth4webapi reads a clock skew from the client metadata; none here.
    const client = {};
    const routes = [
      { name: "connect, a plain fetch of JSON", route: "connect-json" as const, kinds: ["unary"] },
      ...transports.map((t) => ({ name: t.name, route: t, kinds })),
    ];
    for (const alg of ["ES256", "PS256"] as const) {
      for (const { name, route, kinds: routeKinds } of routes) {
        test(`${alg}, ${name}: admitted${nonces ? " after one nonce refusal" : ""}`, async () => {
          const keyPair = await oauth.generateKeyPair(alg, { extractable: false });
          const handle = oauth.DPoP(client, keyPair);
          const token = await boundToken(await handle.calculateThumbprint(), alg);
          const fetchImpl = fetchFor(server(), route);
          for (const [i, kind] of (routeKinds as Kind[]).entries()) {
            const what = `${alg}, ${name}, ${kind}`;
            const first = await peerCall(handle, token, kind, fetchImpl);
            // Only the very first call lacks a nonce: admitted calls hand out the next one.
            assert.deepEqual(first, { subject: alg, retried: nonces && i === 0 }, what);
            const again = await peerCall(handle, token, kind, fetchImpl);
            assert.deepEqual(again, { subject: alg, retried: false }, `${what}, again`);
          }
        });
      }
    }

    test("a refusal reaches oauth4webapi as a DPoP challenge it reads", async () => {
      const keyPair = await oauth.generateKeyPair("ES256");
      const handle = oauth.DPoP(client, keyPair);
      // Bound to another key: the proof is fine, the binding is not.
      const token = await boundToken("x".repeat(43), "other");
      const fetchImpl = fetchFor(server(), "connect-json");
      await assert.rejects(peerCall(handle, token, "unary", fetchImpl), (err) => {
        assert.ok(err instanceof oauth.WWWAuthenticateChallengeError);
        assert.deepEqual(
          err.cause.map((c) => [c.scheme, c.parameters.error, c.parameters.algs]),
          [["dpop", "invalid_token", algorithms.join(" ")]],
        );
        return true;
      });
    });
  });
}
