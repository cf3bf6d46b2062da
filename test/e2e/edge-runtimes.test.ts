// The edge example (example/edge/) bundled and served by Bun and by Deno: a
// valid token is admitted, a missing or expired one refused over the Connect
// protocol with the failure code and the WWW-Authenticate challenge.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { build } from "esbuild";
import { exportSPKI, generateKeyPair, SignJWT } from "jose";
import { neutralBuild, root } from "../helpers/neutral-bundle.js";

const issuer = "https://edge-issuer.example.test/";
const audience = "edge-api";

const runtimes = [
  { name: "bun", entry: "example/edge/bun.ts", args: (file: string) => ["run", file] },
  {
    name: "deno",
    entry: "example/edge/deno.ts",
    args: (file: string) => ["run", "--allow-net=127.0.0.1", "--allow-env", file],
  },
];

/** Bundles an edge entry into one file, as a deploy would: no Node.js, nothing external. */
async function bundle(entry: string, outfile: string): Promise<void> {
  const result = await build(neutralBuild(entry));
  const [output] = result.outputFiles;
  assert.ok(output !== undefined);
  await writeFile(outfile, output.text);
}

/** Starts the runtime on the bundle and resolves to its base URL once it listens. */
function serve(binary: string, args: string[], env: Record<string, string>) {
  const child = spawn(binary, args, {
    env: { ...process.env, ...env, PORT: "0", NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const listening = new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk;
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match !== null) {
        resolve(match[1] as string);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => reject(new Error(`${binary} exited with ${code}: ${output}`)));
    child.on("error", reject);
  });
  return { child, listening };
}

async function whoAmI(baseUrl: string, token?: string) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== undefined) {
    headers.authorization = `Bearer ${token}`;
  }
  const res = await fetch(`${baseUrl}/demo.v1.DemoService/WhoAmI`, {
    method: "POST",
    headers,
    body: "{}",
  });
  return {
    status: res.status,
    challenge: res.headers.get("www-authenticate"),
    body: (await res.json()) as Record<string, unknown>,
  };
}

for (const runtime of runtimes) {
  const binary = join(root, "node_modules", ".bin", runtime.name);
  const missing = !existsSync(binary);
  if (missing && process.env.CI !== "true") {
    console.log(`# skipping ${runtime.name}: ${binary} is missing (npm ci installs it)`);
  }
  describe(`the edge example on ${runtime.name}`, {
    skip: missing && process.env.CI !== "true",
  }, () => {
    let work: string;
    let child: ChildProcess | undefined;
    let baseUrl: string;
    let privateKey: CryptoKey;

    before(async () => {
      work = await mkdtemp(join(tmpdir(), `connect-jwt-${runtime.name}-`));
      const keys = await generateKeyPair("ES256", { extractable: true });
      privateKey = keys.privateKey;
      const file = join(work, "server.js");
      await bundle(runtime.entry, file);
      const server = serve(binary, runtime.args(file), {
        JWT_PUBLIC_KEY: await exportSPKI(keys.publicKey),
        JWT_ALGORITHM: "ES256",
        JWT_ISSUER: issuer,
        JWT_AUDIENCE: audience,
      });
      child = server.child;
      baseUrl = await server.listening;
    });
    after(async () => {
      child?.removeAllListeners("exit");
      child?.kill();
      await rm(work, { recursive: true, force: true });
    });

    const sign = (expiresIn: number) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ sub: `on-${runtime.name}` })
        .setProtectedHeader({ alg: "ES256" })
        .setIssuer(issuer)
        .setAudience(audience)
        .setIssuedAt(now - 600)
        .setExpirationTime(now + expiresIn)
        .sign(privateKey);
    };

    test("a valid token is admitted", async () => {
      const { status, body } = await whoAmI(baseUrl, await sign(300));
      assert.equal(status, 200);
      assert.deepEqual(body, { subject: `on-${runtime.name}`, issuer });
    });

    test("no token is refused with the failure code and a Bearer challenge", async () => {
      const { status, challenge, body } = await whoAmI(baseUrl);
      assert.equal(status, 403);
      assert.equal(body.code, "permission_denied");
      assert.equal(body.message, "missing bearer token");
      assert.equal(challenge, "Bearer");
    });

    test("an expired token is refused as an invalid token", async () => {
      const { status, challenge, body } = await whoAmI(baseUrl, await sign(-120));
      assert.equal(status, 403);
      assert.equal(body.code, "permission_denied");
      assert.equal(body.message, "token expired");
      assert.match(challenge ?? "", /^Bearer error="invalid_token"/);
    });
  });
}
