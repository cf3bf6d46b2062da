import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import type { HandlerContext } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import { SignJWT } from "jose";
import { getClaims, type JwtAuth } from "../src/index.js";
import { call, startServer, transports } from "./helpers/server.js";
import { generateTestKey } from "./helpers/tokens.js";

const root = join(import.meta.dirname, "..");
const work = join(import.meta.dirname, ".readme");
const readme = await readFile(join(root, "README.md"), "utf8");

/** The README's TypeScript examples, with the package name pointed at the source. */
const examples = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) =>
  (m[1] ?? "")
    .replaceAll('from "connect-jwt"', 'from "../../src/index.js"')
    .replaceAll('from "connect-jwt/client"', 'from "../../src/client/index.js"')
    .replaceAll('from "connect-jwt/testing"', 'from "../../src/testing/index.js"')
    .replaceAll('from "./gen/', 'from "../../gen/'),
);

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
    const key = await generateTestKey("ES256");
    process.env.JWT_PUBLIC_KEY = key.publicPem;
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
});
