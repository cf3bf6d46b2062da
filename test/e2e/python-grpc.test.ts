// Python's grpcio (the C core's HTTP/2 and gRPC stack) against our server: a
// client that shares no code with Node calls WhoAmI with and without a token.
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { audience, generateTestKey, issuer, mint } from "../helpers/fixtures.js";
import { gateAndInterceptor, useServer } from "../helpers/server.js";

// The system interpreter: a python3 earlier on PATH (pyenv, venv) may lack grpcio.
const python = "/usr/bin/python3";
const script = fileURLToPath(new URL("peers/grpc_client.py", import.meta.url));

function grpcioMissing(): string | undefined {
  const probe = spawnSync(python, ["-c", "import grpc"], { encoding: "utf8", timeout: 10_000 });
  if (probe.status === 0) {
    return undefined;
  }
  return `${probe.error?.message ?? probe.stderr.trim()}`;
}

// Locally a missing grpcio skips these tests with the reason; on CI it fails them.
const missing = grpcioMissing();
const skip =
  missing !== undefined && process.env.CI !== "true"
    ? "python3-grpcio not installed: apt-get install python3-grpcio"
    : false;

/** What the script prints: the subject, or the status and its challenge. */
type Result =
  | { subject: string }
  | { code: string; details: string; www_authenticate: string | null };

/** whoAmI runs the Python client against `target` (host:port) and parses its JSON line. */
function whoAmI(target: string, authorization?: string): Promise<Result> {
  const args = [script, target, ...(authorization === undefined ? [] : [authorization])];
  return new Promise((resolve, reject) => {
    execFile(python, args, { timeout: 10_000, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`grpc_client.py failed: ${err.message}\n${stderr}`));
        return;
      }
      resolve(JSON.parse(stdout) as Result);
    });
  });
}

const key = await generateTestKey("ES256");
const subject = "subject-python";

describe("python grpcio", () => {
  const server = useServer(() =>
    gateAndInterceptor({ jwks: { keys: [key.publicJwk] }, issuer, audience }),
  );
  const target = () => new URL(server().url).host;

  test("a valid token reaches WhoAmI", { skip }, async () => {
    assert.equal(missing, undefined, `${python} cannot import grpc: ${missing}`);
    const token = await mint(key, { claims: { sub: subject } });
    assert.deepEqual(await whoAmI(target(), `Bearer ${token}`), { subject });
    assert.deepEqual(
      server().calls.map((c) => [c.method, c.claims?.sub]),
      [["WhoAmI", subject]],
    );
  });

  test("no token: PERMISSION_DENIED with the Bearer challenge in the trailers", {
    skip,
  }, async () => {
    assert.equal(missing, undefined, `${python} cannot import grpc: ${missing}`);
    const before = server().calls.length;
    assert.deepEqual(await whoAmI(target()), {
      code: "PERMISSION_DENIED",
      details: "missing bearer token",
      www_authenticate: "Bearer",
    });
    assert.equal(server().calls.length, before, "the handler ran");
  });

  test("an expired token: PERMISSION_DENIED with invalid_token", { skip }, async () => {
    assert.equal(missing, undefined, `${python} cannot import grpc: ${missing}`);
    const before = server().calls.length;
    const exp = Math.floor(Date.now() / 1000) - 3600;
    const token = await mint(key, { claims: { sub: subject, exp } });
    assert.deepEqual(await whoAmI(target(), `Bearer ${token}`), {
      code: "PERMISSION_DENIED",
      details: "token expired",
      www_authenticate: 'Bearer error="invalid_token"',
    });
    assert.equal(server().calls.length, before, "the handler ran");
  });
});
