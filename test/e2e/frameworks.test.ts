// The same auth on every server Connect runs on: connectNodeAdapter over
// node:http and node:http2 (h2c), connect-express and connect-fastify.
import assert from "node:assert/strict";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { Code, type ConnectRouter, createClient } from "@connectrpc/connect";
import { expressConnectMiddleware } from "@connectrpc/connect-express";
import { fastifyConnectPlugin } from "@connectrpc/connect-fastify";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import express from "express";
import { fastify } from "fastify";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { createJwtAuth, requireClaims } from "../../src/index.js";
import { audience, generateTestKey, issuer, mint } from "../helpers/fixtures.js";
import { call, callKinds, type TransportKind } from "../helpers/server.js";

const key = await generateTestKey("ES256");
const auth = createJwtAuth({ jwks: { keys: [key.publicJwk] }, issuer, audience });
type Wiring = { interceptors?: (typeof auth.interceptor)[]; requestGate?: typeof auth.requestGate };
// Each alone: if an adapter dropped either, calls without a token would pass.
const wirings: [string, Wiring][] = [
  ["interceptor", { interceptors: [auth.interceptor] }],
  ["request gate", { requestGate: auth.requestGate }],
];

function routes(router: ConnectRouter) {
  router.service(DemoService, {
    whoAmI: (_req, ctx) => ({ subject: requireClaims(ctx).sub ?? "" }),
    async *listNotes(_req, ctx) {
      yield { note: { id: "1", owner: requireClaims(ctx).sub ?? "" } };
    },
    async uploadNotes(reqs, ctx) {
      for await (const _ of reqs) {
        // drain
      }
      return { owner: requireClaims(ctx).sub ?? "" };
    },
    async *chat(reqs, ctx) {
      for await (const req of reqs) {
        yield { text: req.text, subject: requireClaims(ctx).sub ?? "" };
      }
    },
  });
}

interface Running {
  url: string;
  close(): Promise<void>;
}

const servers: {
  name: string;
  httpVersion: "1.1" | "2";
  start(options: Wiring): Promise<Running>;
}[] = [
  {
    name: "connectNodeAdapter on node:http",
    httpVersion: "1.1",
    async start(options) {
      const server = http.createServer(connectNodeAdapter({ routes, ...options }));
      return listen(server, () => server.closeAllConnections());
    },
  },
  {
    name: "connectNodeAdapter on node:http2 (h2c)",
    httpVersion: "2",
    async start(options) {
      const sessions = new Set<http2.ServerHttp2Session>();
      const server = http2.createServer(connectNodeAdapter({ routes, ...options }));
      server.on("session", (s) => sessions.add(s));
      return listen(server, () => {
        for (const s of sessions) s.close();
      });
    },
  },
  {
    name: "connect-express",
    httpVersion: "1.1",
    async start(options) {
      const app = express();
      app.use(expressConnectMiddleware({ routes, ...options }));
      const server = http.createServer(app);
      return listen(server, () => server.closeAllConnections());
    },
  },
  {
    name: "connect-fastify (HTTP/2)",
    httpVersion: "2",
    async start(options) {
      const app = fastify({ http2: true });
      await app.register(fastifyConnectPlugin, { routes, ...options });
      await app.listen({ host: "127.0.0.1", port: 0 });
      const { port } = app.server.address() as AddressInfo;
      return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
    },
  },
];

async function listen(server: http.Server | http2.Http2Server, drop: () => void): Promise<Running> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        drop();
        server.close(() => resolve());
      }),
  };
}

for (const [wiring, options] of wirings)
  for (const spec of servers) {
    describe(`${spec.name}, ${wiring} alone`, () => {
      let running: Running;
      before(async () => {
        running = await spec.start(options);
      });
      after(() => running.close());

      const protocols =
        spec.httpVersion === "2"
          ? (["connect", "grpc", "grpc-web"] as const)
          : (["connect", "grpc-web"] as const);
      for (const protocol of protocols) {
        const kind: TransportKind = { name: protocol, protocol, httpVersion: spec.httpVersion };
        test(`${protocol}: valid tokens pass, bad ones are refused before the handler`, async () => {
          const baseUrl = running.url;
          const transport =
            protocol === "connect"
              ? createConnectTransport({ baseUrl, httpVersion: spec.httpVersion })
              : protocol === "grpc"
                ? createGrpcTransport({ baseUrl })
                : createGrpcWebTransport({ baseUrl, httpVersion: spec.httpVersion });
          const client = createClient(DemoService, transport);
          const token = await mint(key, { claims: { sub: "adapter" } });
          for (const callKind of callKinds(kind)) {
            assert.deepEqual(
              await call(client, callKind, `Bearer ${token}`),
              { ok: true, subject: "adapter" },
              callKind,
            );
            const refused = await call(client, callKind, "Bearer x.y.z");
            assert.equal(
              refused.ok ? undefined : refused.error.code,
              Code.PermissionDenied,
              callKind,
            );
            const missing = await call(client, callKind);
            assert.equal(
              missing.ok ? undefined : missing.error.metadata.get("www-authenticate"),
              "Bearer",
            );
          }
        });
      }
    });
  }
