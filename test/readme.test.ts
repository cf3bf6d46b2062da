import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { once } from "node:events";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import * as http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import type { HandlerContext, Transport } from "@connectrpc/connect";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { SignJWT } from "jose";
import type { CleartextServer } from "../example/listen.js";
import { selfSignedCertificate } from "../example/x509.js";
import { DemoService } from "../gen/demo/v1/demo_pb.js";
import { getClaims, type JwtAuth } from "../src/index.js";
import { call, startServer, transports } from "./helpers/server.js";
import { generateTestKey, type TestKey } from "./helpers/tokens.js";

const root = join(import.meta.dirname, "..");
const work = join(import.meta.dirname, ".readme");
const readme = await readFile(join(root, "README.md"), "utf8");

/** The README's TypeScript examples, with the package name pointed at the source. */
const examples = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) =>
  (m[1] ?? "")
    .replaceAll('from "connect-jwt"', 'from "../../src/index.js"')
    .replaceAll('from "connect-jwt/client"', 'from "../../src/client/index.js"')
    .replaceAll('from "connect-jwt/testing"', 'from "../../src/testing/index.js"')
    .replaceAll('from "./gen/', 'from "../../gen/')
    // "./server.js" is the file of "Use it", the first example; "./listen.js" a copy of the demo's.
    .replaceAll('from "./server.js"', 'from "./example-0.js"')
    .replaceAll('from "./listen.js"', 'from "../../example/listen.js"'),
);

/**
 * The key of the first example's `JWT_PUBLIC_KEY`, made once: the example is
 * imported once, so every test that calls its handler signs with this key.
 */
let firstExampleKey: Promise<TestKey> | undefined;
function useFirstExampleKey(): Promise<TestKey> {
  firstExampleKey ??= generateTestKey("ES256").then((key) => {
    process.env.JWT_PUBLIC_KEY = key.publicPem;
    return key;
  });
  return firstExampleKey;
}

/** A token the first example accepts, for `sub`. */
function firstExampleToken(key: TestKey, sub: string): Promise<string> {
  return new SignJWT({ sub })
    .setProtectedHeader({ alg: "ES256" })
    .setIssuer("https://auth.example.com/")
    .setAudience("notes-api")
    .setExpirationTime("5m")
    .sign(key.privateKey);
}

/** The three ways to reach a server on one port: what browsers and gRPC clients use. */
const onePortTransports = {
  "connect over HTTP/1.1": (baseUrl: string, ca?: string) =>
    createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions: { ca } }),
  "grpc over HTTP/2": (baseUrl: string, ca?: string) =>
    createGrpcTransport({ baseUrl, nodeOptions: { ca } }),
  "grpc-web over HTTP/1.1": (baseUrl: string, ca?: string) =>
    createGrpcWebTransport({ baseUrl, httpVersion: "1.1", nodeOptions: { ca } }),
} satisfies Record<string, (baseUrl: string, ca?: string) => Transport>;

/** Calls WhoAmI with `token`; resolves to the subject the handler answered with. */
async function whoAmI(transport: Transport, token: string): Promise<string> {
  const client = createClient(DemoService, transport);
  const reply = await client.whoAmI({}, { headers: { authorization: `Bearer ${token}` } });
  return reply.subject;
}

describe("README", () => {
  before(async () => {
    await mkdir(work, { recursive: true });
    await writeFile(
      join(work, "tsconfig.json"),
      JSON.stringify({ extends: "../../tsconfig.json", include: ["*.ts"] }),
    );
    for (const [i, code] of examples.entries()) {
      await writeFile(join(work, `example-${i}.ts`), code);
    }
  });
  after(() => rm(work, { recursive: true, force: true }));

  test("has the two Quickstart commands, and package.json has their scripts", async () => {
    assert.match(readme, /^npm install && npm start /m);
    assert.match(readme, /^npm test /m);
    const { scripts } = JSON.parse(await readFile(join(root, "package.json"), "utf8"));
    assert.equal(typeof scripts.start, "string");
    assert.equal(typeof scripts.test, "string");
  });

  test("every TypeScript example typechecks", async () => {
    assert.ok(examples.length >= 3, "the README lost its examples");
    const tsc = join(root, "node_modules", ".bin", "tsc");
    await promisify(execFile)(tsc, ["-p", work], { timeout: 120_000 }).catch(
      (err: { stdout?: string }) => assert.fail(`tsc failed:\n${err.stdout ?? String(err)}`),
    );
  });

  test("the first example serves WhoAmI to a valid token and refuses a missing one", async () => {
    const key = await useFirstExampleKey();
    const { handler } = (await import(join(work, "example-0.ts"))) as {
      handler: (req: unknown, res: unknown) => void;
    };
    // The example's handler is a whole connectNodeAdapter; mount it as the server's handler.
    const server = await startServer({ handler });
    try {
      const token = await new SignJWT({ sub: "readme" })
        .setProtectedHeader({ alg: "ES256" })
        .setIssuer("https://auth.example.com/")
        .setAudience("notes-api")
        .setExpirationTime("5m")
        .sign(key.privateKey);
      for (const transport of transports) {
        assert.deepEqual(await call(server.client(transport), "unary", `Bearer ${token}`), {
          ok: true,
          subject: "readme",
        });
        const refused = await call(server.client(transport), "unary");
        assert.equal(refused.ok ? undefined : refused.error.code, Code.PermissionDenied);
      }
    } finally {
      await server.close();
    }
  });

  test("the onDenied example builds an auth that verifies its tokens", async () => {
    process.env.JWT_SECRET = "a-secret-of-at-least-32-bytes-for-the-readme";
    const index = examples.findIndex((code) => code.includes("onDenied"));
    const { auth } = (await import(join(work, `example-${index}.ts`))) as { auth: JwtAuth };
    const token = await new SignJWT({ sub: "readme" })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("https://auth.example.com/")
      .setAudience("notes-api")
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(process.env.JWT_SECRET));
    assert.equal((await auth.verify(token)).sub, "readme");
  });

  test("the rules example compiles its rules at construction, with no network", async () => {
    const index = examples.findIndex((code) => code.includes("defaultRule"));
    const { auth } = (await import(join(work, `example-${index}.ts`))) as { auth: JwtAuth };
    assert.equal(typeof auth.interceptor, "function");
    await assert.rejects(auth.verify("a.b.c"), { code: "ERR_TOKEN_MALFORMED" });
  });

  test("the testing example runs: issuer, verify, rotate, and a context with claims", async () => {
    const index = examples.findIndex((code) => code.includes("createTestIssuer"));
    const { ctx } = (await import(join(work, `example-${index}.ts`))) as { ctx: HandlerContext };
    assert.equal(getClaims(ctx)?.sub, "alice");
  });

  test("the client example builds a client with bearerAuth", async () => {
    const index = examples.findIndex((code) => code.includes("bearerAuth"));
    const { client } = (await import(join(work, `example-${index}.ts`))) as { client: object };
    assert.equal(typeof (client as { whoAmI?: unknown }).whoAmI, "function");
  });

  test("the TLS example serves all three on one port: ALPN picks HTTP/2 or HTTP/1.1", async () => {
    const key = await useFirstExampleKey();
    const credentials = selfSignedCertificate();
    process.env.TLS_CERT_FILE = join(work, "cert.pem");
    process.env.TLS_KEY_FILE = join(work, "key.pem");
    await writeFile(process.env.TLS_CERT_FILE, credentials.cert);
    await writeFile(process.env.TLS_KEY_FILE, credentials.key);
    process.env.PORT = "0";
    const index = examples.findIndex((code) => code.includes("allowHTTP1"));
    const { server } = (await import(join(work, `example-${index}.ts`))) as {
      server: http2.Http2SecureServer;
    };
    const versions: string[] = [];
    server.on("request", (req: http2.Http2ServerRequest) => versions.push(req.httpVersion));
    const sockets = new Set<Socket>();
    server.on("secureConnection", (socket: Socket) => sockets.add(socket));
    try {
      if (!server.listening) {
        await once(server, "listening");
      }
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      for (const [name, transport] of Object.entries(onePortTransports)) {
        const token = await firstExampleToken(key, name);
        assert.equal(await whoAmI(transport(url, credentials.cert), token), name);
      }
      // Clients that offer h2 get it; clients that offer nothing get HTTP/1.1.
      assert.deepEqual(versions, ["1.1", "2.0", "1.1"]);
    } finally {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const socket of sockets) {
        socket.destroy();
      }
      await closed;
    }
  });

  test("cleartext: http2.createServer alone turns HTTP/1.1 away, the listen.ts example serves all three", async () => {
    const key = await useFirstExampleKey();
    const token = await firstExampleToken(key, "h2c");
    const { handler } = (await import(join(work, "example-0.ts"))) as {
      handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
    };
    const plain = http2.createServer(handler);
    const sessions = new Set<http2.ServerHttp2Session>();
    plain.on("session", (session) => sessions.add(session));
    plain.listen(0, "127.0.0.1");
    await once(plain, "listening");
    try {
      const url = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
      assert.equal(await whoAmI(onePortTransports["grpc over HTTP/2"](url), token), "h2c");
      for (const name of ["connect over HTTP/1.1", "grpc-web over HTTP/1.1"] as const) {
        await assert.rejects(whoAmI(onePortTransports[name](url), token), (err) => {
          // The HTTP/1.1 client reads HTTP/2 frames ("Parse Error: Expected HTTP/"), or a reset.
          const { code, message } = ConnectError.from(err);
          assert.ok(code === Code.Internal || code === Code.Unavailable, `${name}: ${message}`);
          return true;
        });
      }
    } finally {
      const closed = new Promise((resolve) => plain.close(resolve));
      for (const session of sessions) {
        session.destroy();
      }
      await closed;
    }

    process.env.PORT = "0";
    const index = examples.findIndex((code) => code.includes("listenCleartext("));
    const { server } = (await import(join(work, `example-${index}.ts`))) as {
      server: CleartextServer;
    };
    try {
      for (const [name, transport] of Object.entries(onePortTransports)) {
        assert.equal(await whoAmI(transport(server.url), token), "h2c", name);
      }
    } finally {
      await server.close();
    }
  });
});
