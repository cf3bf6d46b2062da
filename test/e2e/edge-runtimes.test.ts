// The edge example (example/edge/) bundled for a neutral platform and served
// by Bun, Deno and workerd (Cloudflare Workers, through miniflare, without
// nodejs_compat), called from this process with connect-web's transports
// over the Connect protocol and gRPC-Web: the same behaviour on each runtime.
// gRPC is not here: fetch responses carry no HTTP trailers, so gRPC is served
// from Node.js (test/e2e/protocols.test.ts).
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import {
  type EdgeServer,
  edgeProtocols,
  edgeRuntimes,
  skipUnlessInstalled,
} from "../helpers/edge-runtime.js";
import { audience, generateTestKey, issuer, mint, type TestKey } from "../helpers/fixtures.js";

const invalidToken = 'Bearer error="invalid_token"';

/** A token the server must refuse, and the message and challenge it answers with. */
interface Refusal {
  name: string;
  token: (key: TestKey, forger: TestKey) => Promise<string | undefined>;
  message: string;
  challenge: string;
}

const refusals: Refusal[] = [
  {
    name: "a missing token",
    token: async () => undefined,
    message: "missing bearer token",
    challenge: "Bearer",
  },
  {
    name: "an expired token",
    token: (key) => mint(key, { claims: { exp: Math.floor(Date.now() / 1000) - 120 } }),
    message: "token expired",
    challenge: invalidToken,
  },
  {
    name: "a token for another audience",
    token: (key) => mint(key, { claims: { aud: "another-api" } }),
    message: "invalid token",
    challenge: invalidToken,
  },
  {
    // Signed by another key under the served key's kid: found, but the signature fails.
    name: "a forged token",
    token: (_key, forger) => mint(forger),
    message: "invalid token",
    challenge: invalidToken,
  },
];

/** A JWKS endpoint on 127.0.0.1 that counts how often it was fetched. */
async function startJwks(
  key: TestKey,
): Promise<{ url: string; fetches: () => number; server: Server }> {
  let fetches = 0;
  const server = createServer((_req, res) => {
    fetches++;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys: [key.publicJwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/jwks.json`, fetches: () => fetches, server };
}

type Kind = "unary" | "server-streaming";

/** Calls WhoAmI or ListNotes; resolves to the claims the handler saw, as it answered them. */
async function callAs(client: Client<typeof DemoService>, kind: Kind, token?: string) {
  const options = {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    timeoutMs: 10_000,
  };
  if (kind === "unary") {
    const res = await client.whoAmI({}, options);
    return { subject: res.subject, claims: JSON.parse(res.claimsJson) as Record<string, unknown> };
  }
  const owners: string[] = [];
  for await (const res of client.listNotes({ limit: 2 }, options)) {
    owners.push(res.note?.owner ?? "");
  }
  assert.equal(owners.length, 2);
  return { subject: [...new Set(owners)].join(","), claims: undefined };
}

/**
 * Sends a 4 MiB unary call without a token, from a request stream that gives
 * 64 KiB and then waits until the whole answer has come (or, on a runtime
 * that reads the whole body first, 5 seconds). Resolves to the answer and the
 * bytes the stream had given when it came.
 */
async function hugeUnaryCall(baseUrl: string, contentType: string) {
  const total = 4 * 1024 * 1024;
  const stallAt = 64 * 1024;
  const chunk = new Uint8Array(16 * 1024);
  let pulled = 0;
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const fallback = setTimeout(release, 5_000);
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (pulled >= stallAt) {
          await released;
        }
        if (pulled >= total) {
          controller.close();
          return;
        }
        pulled += chunk.length;
        controller.enqueue(chunk.slice());
      },
    },
    { highWaterMark: 0 },
  );
  const abort = new AbortController();
  try {
    const res = await fetch(`${baseUrl}/demo.v1.DemoService/WhoAmI`, {
      method: "POST",
      headers: { "content-type": contentType },
      body,
      duplex: "half",
      signal: abort.signal,
    } as RequestInit);
    // The whole answer is read while the request stream waits: once it goes on,
    // a runtime may reset the connection it has answered, and the answer with it.
    const text = await res.text();
    return { pulledAtAnswer: pulled, stallAt, status: res.status, headers: res.headers, text };
  } finally {
    clearTimeout(fallback);
    abort.abort();
    release();
  }
}

for (const runtime of edgeRuntimes) {
  describe(`the edge example on ${runtime.name}`, { skip: skipUnlessInstalled(runtime) }, () => {
    let key: TestKey;
    let forger: TestKey;
    let jwks: Awaited<ReturnType<typeof startJwks>>;
    let server: EdgeServer;
    const clients = new Map<string, Client<typeof DemoService>>();

    before(async () => {
      key = await generateTestKey("ES256");
      forger = await generateTestKey("ES256", key.kid);
      jwks = await startJwks(key);
      // One server for the whole suite, keys from jwksUrl: the first calls fetch them.
      server = await runtime.start({
        JWT_JWKS_URL: jwks.url,
        JWT_ALGORITHM: "ES256",
        JWT_ISSUER: issuer,
        JWT_AUDIENCE: audience,
      });
      for (const protocol of edgeProtocols) {
        clients.set(protocol.name, createClient(DemoService, protocol.transport(server.baseUrl)));
      }
    });
    after(async () => {
      await server?.stop();
      jwks?.server.close();
    });
    const client = (protocol: string) => clients.get(protocol) as Client<typeof DemoService>;

    // First, while the isolate has no key yet.
    test("keys from jwksUrl: 20 concurrent calls with 20 new tokens fetch the JWKS once", async () => {
      assert.equal(jwks.fetches(), 0);
      const calls = Array.from({ length: 20 }, async (_, i) => {
        const token = await mint(key, { claims: { sub: `caller-${i}` } });
        const protocol = edgeProtocols[i % edgeProtocols.length]?.name ?? "connect";
        return (await callAs(client(protocol), "unary", token)).subject;
      });
      assert.deepEqual(
        await Promise.all(calls),
        Array.from({ length: 20 }, (_, i) => `caller-${i}`),
      );
      assert.equal(jwks.fetches(), 1);
    });

    for (const protocol of edgeProtocols) {
      describe(protocol.name, () => {
        for (const kind of ["unary", "server-streaming"] as const) {
          test(`${kind}: a valid token is admitted, its claims in the handler`, async () => {
            const sub = `${runtime.name}-${protocol.name}-${kind}`;
            const token = await mint(key, { claims: { sub, tenant: "t-edge" } });
            const seen = await callAs(client(protocol.name), kind, token);
            assert.equal(seen.subject, sub);
            if (seen.claims !== undefined) {
              assert.equal(seen.claims.iss, issuer);
              assert.equal(seen.claims.aud, audience);
              assert.equal(seen.claims.tenant, "t-edge");
            }
          });

          for (const refusal of refusals) {
            test(`${kind}: ${refusal.name} is refused with the failure code and a challenge`, async () => {
              const token = await refusal.token(key, forger);
              await assert.rejects(callAs(client(protocol.name), kind, token), (err) => {
                const error = ConnectError.from(err);
                assert.equal(error.code, Code.PermissionDenied);
                assert.equal(error.rawMessage, refusal.message);
                assert.equal(error.metadata.get("www-authenticate"), refusal.challenge);
                return true;
              });
            });
          }
        }

        test("a public method answers without a token", async () => {
          const res = await client(protocol.name).ping({ text: "hi" }, { timeoutMs: 10_000 });
          assert.equal(res.text, "hi");
          assert.equal(res.subject, "");
        });
      });
    }

    // Bun, Deno and workerd hand the handler a body they have not read yet,
    // so the gate answers while the request stream still waits at 64 KiB.
    test("the request gate refuses a 4 MiB unary call before its body is read", async () => {
      const connect = await hugeUnaryCall(server.baseUrl, "application/proto");
      assert.equal(connect.status, 403);
      assert.equal(connect.headers.get("www-authenticate"), "Bearer");
      assert.equal(JSON.parse(connect.text).message, "missing bearer token");
      assert.ok(
        connect.pulledAtAnswer <= connect.stallAt,
        `Connect: ${connect.pulledAtAnswer} bytes sent before the answer`,
      );

      const grpcWeb = await hugeUnaryCall(server.baseUrl, "application/grpc-web+proto");
      assert.equal(grpcWeb.status, 200);
      assert.match(grpcWeb.text, /grpc-status: ?7\r\n/);
      assert.match(grpcWeb.text, /www-authenticate: ?Bearer\r\n/);
      assert.ok(
        grpcWeb.pulledAtAnswer <= grpcWeb.stallAt,
        `gRPC-Web: ${grpcWeb.pulledAtAnswer} bytes sent before the answer`,
      );
    });

    // The cheapest setup for short-lived isolates: the key inline, nothing to fetch.
    test("a key inline (PEM in JWT_PUBLIC_KEY): admitted and refused without any fetch", async () => {
      const inline = await runtime.start({
        JWT_PUBLIC_KEY: key.publicPem,
        JWT_ALGORITHM: "ES256",
        JWT_ISSUER: issuer,
        JWT_AUDIENCE: audience,
      });
      try {
        const fetchesBefore = jwks.fetches();
        const inlineClient = createClient(
          DemoService,
          createConnectTransport({ baseUrl: inline.baseUrl }),
        );
        const seen = await callAs(
          inlineClient,
          "unary",
          await mint(key, { claims: { sub: "inline" } }),
        );
        assert.equal(seen.subject, "inline");
        await assert.rejects(callAs(inlineClient, "unary", await mint(forger)), (err) => {
          assert.equal(ConnectError.from(err).rawMessage, "invalid token");
          return true;
        });
        assert.equal(jwks.fetches(), fetchesBefore);
      } finally {
        await inline.stop();
      }
    });

    // Last: the keys stayed in the isolate for every call above.
    test("after every call above, the JWKS was still fetched once", () => {
      assert.equal(jwks.fetches(), 1);
    });
  });
}
