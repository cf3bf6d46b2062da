import assert from "node:assert/strict";
import type * as http2 from "node:http2";
import { after, before, describe, test } from "node:test";
import { Code, createClient, type Transport } from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { type CleartextServer, listenCleartext } from "../../example/listen.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { createJwtAuth, joinAuthorizationHeaders } from "../../src/index.js";
import { audience, generateTestKey, issuer } from "../helpers/fixtures.js";
import { call } from "../helpers/server.js";

// A Connect or gRPC-Web client resets every streaming call that ends in an
// error (it reads the error, then cancels the stream), and Node.js closes a
// connection with GOAWAY once its clients have reset too many streams (see
// streamResetLimit in example/listen.ts). Refused calls must not close the
// connection: behind a proxy it carries everyone's calls.

const calls = 3_000;
const inFlight = 8;

const key = await generateTestKey("ES256");
const auth = createJwtAuth({ jwks: { keys: [key.publicJwk] }, issuer, audience });

describe(`${calls} refused server-streaming calls on one HTTP/2 connection`, () => {
  /** Every server-side HTTP/2 session that carried a call, and how many times a handler ran. */
  const sessions = new Set<http2.Http2Session>();
  let handlerRuns = 0;
  let server: CleartextServer | undefined;

  before(async () => {
    const adapter = connectNodeAdapter({
      routes: (router) =>
        router.service(DemoService, {
          async *listNotes() {
            handlerRuns++;
            yield { note: { id: "1" } };
          },
        }),
      interceptors: [auth.interceptor],
      requestGate: auth.requestGate,
    });
    const handler = joinAuthorizationHeaders(adapter);
    // The demo's listener: HTTP/1.1 and h2c on one port, with its HTTP/2 settings.
    server = await listenCleartext((req, res) => {
      if ("stream" in req && req.stream.session !== undefined) {
        sessions.add(req.stream.session);
      }
      handler(req, res);
    });
  });
  after(() => server?.close());

  const protocols: Record<
    string,
    (options: { baseUrl: string; sessionManager: Http2SessionManager }) => Transport
  > = {
    grpc: (o) => createGrpcTransport(o),
    connect: (o) => createConnectTransport({ ...o, httpVersion: "2" }),
    "grpc-web": (o) => createGrpcWebTransport({ ...o, httpVersion: "2" }),
  };

  for (const [protocol, createTransport] of Object.entries(protocols)) {
    test(`${protocol} over HTTP/2: each is refused, and one connection serves them all`, async () => {
      assert.ok(server !== undefined);
      sessions.clear();
      handlerRuns = 0;
      // A Node.js client also counts the empty frame that ends a stream it has
      // already reset as an invalid frame, and closes its own connection after
      // maxSessionInvalidFrames (1,000) of them. That limit is the client's; it
      // is raised here so that only the server could end the connection.
      // (Node.js's types list the option for servers only; client sessions read it too.)
      const clientOptions: http2.ClientSessionOptions &
        Pick<http2.ServerSessionOptions, "maxSessionInvalidFrames"> = {
        maxSessionInvalidFrames: 100_000,
      };
      const sessionManager = new Http2SessionManager(server.url, undefined, clientOptions);
      const client = createClient(
        DemoService,
        createTransport({ baseUrl: server.url, sessionManager }),
      );
      const outcomes = new Map<string, number>();
      let next = 0;
      try {
        await Promise.all(
          Array.from({ length: inFlight }, async () => {
            while (next < calls) {
              next++;
              const outcome = await call(client, "server-streaming");
              const key = outcome.ok
                ? "accepted"
                : `${Code[outcome.error.code]}: ${outcome.error.rawMessage}`;
              outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
            }
          }),
        );
      } finally {
        sessionManager.abort();
      }
      assert.deepEqual(Object.fromEntries(outcomes), {
        "PermissionDenied: missing bearer token": calls,
      });
      assert.equal(handlerRuns, 0, "a refused call reached the handler");
      // A GOAWAY makes the client open a new connection for the calls that follow.
      assert.equal(sessions.size, 1, "the calls were spread over several connections");
    });
  }
});
