import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { once } from "node:events";
import { glob, mkdir, readFile, rm, writeFile } from "node:fs/promises";
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
import type { CleartextServer } from "../../example/listen.js";
import { selfSignedCertificate } from "../../example/x509.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { getClaims, type JwtAuth } from "../../src/index.js";
import { createTestContext } from "../../src/testing/index.js";
import { generateTestKey, type TestKey } from "../helpers/fixtures.js";
import { call, startServer, transports } from "../helpers/server.js";

const root = join(import.meta.dirname, "..", "..");
const work = join(import.meta.dirname, ".readme");

/** Where the TypeScript examples are: the README, the guides of docs/ and CONTRIBUTING.md. */
const docs = ["README.md", "CONTRIBUTING.md"];
for await (const file of glob("docs/**/*.md", {
  cwd: root,
  exclude: (path) => path === "docs/api",
})) {
  docs.push(file);
}
docs.sort();

/** One ```ts block of a doc, as the file the tests write it to. */
interface Example {
  /** Where it is, e.g. `docs/serving.md:14`. */
  readonly where: string;
  /**
   * Its file name in the work directory: the name its first line gives
   * (`// server.ts`), so that other examples import it as `./server.js` and
   * tests find it by that name; else `<doc>-<n>.ts`, e.g. `docs-keys-0.ts`.
   */
  readonly file: string;
  /** The code, with the package's entry points pointed at the source. */
  readonly code: string;
}

/** The first line of an example that names its file. */
const fileNameLine = /^\/\/ ([\w-]+\.ts)\n/;

/** The ```ts (or ```typescript) blocks of a Markdown file. */
function tsBlocks(markdown: string): { line: number; code: string }[] {
  return [...markdown.matchAll(/^```(?:ts|typescript)\n([\s\S]*?)^```/gm)].map((m) => ({
    line: markdown.slice(0, m.index).split("\n").length + 1,
    code: m[1] ?? "",
  }));
}

const examples: Example[] = [];
for (const doc of docs) {
  const blocks = tsBlocks(await readFile(join(root, doc), "utf8"));
  for (const [n, { line, code }] of blocks.entries()) {
    examples.push({
      where: `${doc}:${line}`,
      file:
        fileNameLine.exec(code)?.[1] ?? `${doc.replace(/\.md$/, "").replaceAll("/", "-")}-${n}.ts`,
      code: code
        .replaceAll('from "connect-jwt"', 'from "../../../src/index.js"')
        .replaceAll('from "connect-jwt/client"', 'from "../../../src/client/index.js"')
        .replaceAll('from "connect-jwt/testing"', 'from "../../../src/testing/index.js"')
        .replaceAll('from "connect-jwt/otel"', 'from "../../../src/otel/index.js"')
        .replaceAll('from "connect-jwt/redis"', 'from "../../../src/redis/index.js"')
        .replaceAll('from "./gen/', 'from "../../../gen/')
        // "./listen.js" is a copy of the demo's.
        .replaceAll('from "./listen.js"', 'from "../../../example/listen.js"'),
    });
  }
}

/** The examples the tests imported, so the last test can tell which named ones none ran. */
const imported = new Set<string>();

/**
 * importExample imports the example whose first line is `// <file>`: a test
 * that runs an example finds it by name, wherever in the docs it moved, and
 * fails when no doc holds it any more.
 */
async function importExample<T>(file: string): Promise<T> {
  const found = examples.filter((e) => e.file === file);
  assert.equal(found.length, 1, `exactly one example of the docs should open with "// ${file}"`);
  imported.add(file);
  return (await import(join(work, file))) as T;
}

/**
 * The key of the README server's `JWT_PUBLIC_KEY`, made once: the example is
 * imported once, so every test that calls its handler signs with this key.
 */
let serverKey: Promise<TestKey> | undefined;
function useServerKey(): Promise<TestKey> {
  serverKey ??= generateTestKey("ES256").then((key) => {
    process.env.JWT_PUBLIC_KEY = key.publicPem;
    return key;
  });
  return serverKey;
}

/** A token the README's server accepts, for `sub`. */
function serverToken(key: TestKey, sub: string): Promise<string> {
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

/** The Markdown files of the repository that hold a ```ts block. */
async function docsWithTypeScript(): Promise<string[]> {
  const skipped = /(^|\/)(node_modules|\.git|dist)$|^docs\/api$|^test\/e2e\/\.readme$/;
  const found: string[] = [];
  for await (const file of glob("**/*.md", { cwd: root, exclude: (path) => skipped.test(path) })) {
    if (tsBlocks(await readFile(join(root, file), "utf8")).length > 0) {
      found.push(file);
    }
  }
  return found.sort();
}

describe("the TypeScript examples of the README, docs/ and CONTRIBUTING.md", () => {
  before(async () => {
    await mkdir(work, { recursive: true });
    await writeFile(
      join(work, "tsconfig.json"),
      JSON.stringify({ extends: "../../../tsconfig.json", include: ["*.ts"] }),
    );
    for (const { file, code } of examples) {
      await writeFile(join(work, file), code);
    }
  });
  after(() => rm(work, { recursive: true, force: true }));

  test("the README has the two commands of a clone, and package.json has their scripts", async () => {
    const readme = await readFile(join(root, "README.md"), "utf8");
    const clone = readme
      .split(/^## /m)
      .find((section) => section.startsWith("Try it from a clone"));
    assert.ok(clone, 'the README lost its "Try it from a clone" section');
    assert.match(clone, /^```sh\nnpm install && npm start .*\nnpm test .*\n```$/m);
    const { scripts } = JSON.parse(await readFile(join(root, "package.json"), "utf8"));
    assert.equal(typeof scripts.start, "string");
    assert.equal(typeof scripts.test, "string");
  });

  test("every Markdown file with a TypeScript block is one whose examples are checked here", async () => {
    assert.deepEqual(
      (await docsWithTypeScript()).filter((file) => !docs.includes(file)),
      [],
      "add these files to `docs` in this test",
    );
    for (const file of ["README.md", "docs/serving.md", "docs/rules.md", "docs/testing.md"]) {
      assert.ok(
        examples.some((e) => e.where.startsWith(`${file}:`)),
        `${file} lost its examples`,
      );
    }
  });

  test("example file names are unique, so each import finds the block it names", () => {
    const seen = new Map<string, string>();
    for (const { file, where } of examples) {
      assert.ok(!seen.has(file), `${where} and ${seen.get(file)} are both written as ${file}`);
      seen.set(file, where);
    }
  });

  test("every TypeScript example typechecks", async () => {
    const tsc = join(root, "node_modules", ".bin", "tsc");
    await promisify(execFile)(tsc, ["-p", work], { timeout: 120_000 }).catch(
      (err: { stdout?: string }) => {
        // tsc names the files it wrote; say where in the docs each one is.
        const legend = examples.map((e) => `${e.file}: ${e.where}`).join("\n");
        assert.fail(`tsc failed:\n${err.stdout ?? String(err)}\n${legend}`);
      },
    );
  });

  test("the README's server.ts serves WhoAmI to a valid token and refuses a missing one", async () => {
    const key = await useServerKey();
    const { handler } = await importExample<{ handler: (req: unknown, res: unknown) => void }>(
      "server.ts",
    );
    // The example's handler is a whole connectNodeAdapter; mount it as the server's handler.
    const server = await startServer({ handler });
    try {
      const token = await serverToken(key, "readme");
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

  test("the README's client.ts builds a browser client with bearerAuth", async () => {
    const { client } = await importExample<{ client: object }>("client.ts");
    assert.equal(typeof (client as { whoAmI?: unknown }).whoAmI, "function");
  });

  test("the static keys example verifies its secret's and its public key's tokens", async () => {
    process.env.JWT_SECRET = "a-secret-of-at-least-32-bytes-for-the-readme";
    const ed25519 = await generateTestKey("EdDSA");
    process.env.JWT_PUBLIC_KEY_PEM = ed25519.publicPem;
    const { internal, signed, both } = await importExample<{
      internal: JwtAuth;
      signed: JwtAuth;
      both: JwtAuth;
    }>("static-keys.ts");
    const secretToken = await new SignJWT({ sub: "internal" })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("https://internal.example.com/")
      .setAudience("notes-api")
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(process.env.JWT_SECRET));
    assert.equal((await internal.verify(secretToken)).sub, "internal");
    const signedToken = await new SignJWT({ sub: "signed" })
      .setProtectedHeader({ alg: "EdDSA" })
      .setIssuer("https://signer.example.com/")
      .setAudience("notes-api")
      .setExpirationTime("5m")
      .sign(ed25519.privateKey);
    assert.equal((await signed.verify(signedToken)).sub, "signed");
    // A token of an issuer no entry names is refused before any key is fetched.
    await assert.rejects(both.verify(signedToken), { code: "ERR_ISSUER_INVALID" });
  });

  test("the onDenied example builds an auth that verifies its tokens", async () => {
    process.env.JWT_SECRET = "a-secret-of-at-least-32-bytes-for-the-readme";
    const { auth } = await importExample<{ auth: JwtAuth }>("refusal-metrics.ts");
    const token = await new SignJWT({ sub: "readme" })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("https://auth.example.com/")
      .setAudience("notes-api")
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(process.env.JWT_SECRET));
    assert.equal((await auth.verify(token)).sub, "readme");
  });

  test("the DPoP examples build an auth; with required, a Bearer token is refused unverified", async () => {
    const { auth } = await importExample<{ auth: JwtAuth }>("dpop-server.ts");
    assert.equal(typeof auth.requestGate, "function");
    // The Redis one builds its auth without a round trip (its client is not connected).
    const redis = await importExample<{ auth: JwtAuth }>("dpop-redis.ts");
    assert.equal(typeof redis.auth.requestGate, "function");
    const required = await importExample<{ auth: JwtAuth }>("dpop-replay-store.ts");
    const ctx = createTestContext(DemoService.method.whoAmI);
    ctx.requestHeader.set("authorization", "Bearer a.b.c");
    await assert.rejects(required.auth.requestGate(ctx), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(
        err.metadata.get("www-authenticate"),
        'DPoP error="invalid_token", algs="ES256 EdDSA PS256 RS256"',
      );
      return true;
    });
  });

  test("the rules example compiles its rules at construction, with no network", async () => {
    const { auth } = await importExample<{ auth: JwtAuth }>("rules.ts");
    assert.equal(typeof auth.interceptor, "function");
    await assert.rejects(auth.verify("a.b.c"), { code: "ERR_TOKEN_MALFORMED" });
  });

  test("the testing example runs: issuer, verify, rotate, and a context with claims", async () => {
    const { ctx } = await importExample<{ ctx: HandlerContext }>("test-issuer.ts");
    assert.equal(getClaims(ctx)?.sub, "alice");
  });

  test("the client guide's example builds a client with bearerAuth", async () => {
    const { client } = await importExample<{ client: object }>("login-client.ts");
    assert.equal(typeof (client as { whoAmI?: unknown }).whoAmI, "function");
  });

  test("the client guide's DPoP example builds a client with dpopAuth and its key pair", async () => {
    const { client } = await importExample<{ client: object }>("dpop-client.ts");
    assert.equal(typeof (client as { whoAmI?: unknown }).whoAmI, "function");
  });

  test("the TLS example serves all three on one port: ALPN picks HTTP/2 or HTTP/1.1", async () => {
    const key = await useServerKey();
    const credentials = selfSignedCertificate();
    process.env.TLS_CERT_FILE = join(work, "cert.pem");
    process.env.TLS_KEY_FILE = join(work, "key.pem");
    await writeFile(process.env.TLS_CERT_FILE, credentials.cert);
    await writeFile(process.env.TLS_KEY_FILE, credentials.key);
    process.env.PORT = "0";
    const { server } = await importExample<{ server: http2.Http2SecureServer }>("tls-server.ts");
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
        const token = await serverToken(key, name);
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
    const key = await useServerKey();
    const token = await serverToken(key, "h2c");
    const { handler } = await importExample<{
      handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
    }>("server.ts");
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
    const { server } = await importExample<{ server: CleartextServer }>("cleartext-server.ts");
    try {
      for (const [name, transport] of Object.entries(onePortTransports)) {
        assert.equal(await whoAmI(transport(server.url), token), "h2c", name);
      }
    } finally {
      await server.close();
    }
  });

  // Last: the tests above have imported every example they run.
  test("every example that names its file is run by a test above", () => {
    const named = examples.filter((e) => fileNameLine.test(e.code));
    const notRun = named.filter((e) => !imported.has(e.file)).map((e) => `${e.file} (${e.where})`);
    assert.deepEqual(notRun, [], "write a test that runs these, or drop their file name line");
  });
});
