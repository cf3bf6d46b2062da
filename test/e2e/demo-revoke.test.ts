// The demo's POST /demo/revoke: a revoked token or subject is refused on
// every protocol, bad requests get a typed 4xx, and with REDIS_URL two demo
// processes on two ports share the list, as docs/replicas.md shows (its
// commands run here as written, against a redis-server of the test's own).
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { decodeJwt } from "jose";
import { externalIssuerVariables, readConfig } from "../../example/config.js";
import { type Demo, demoAudience, startDemo } from "../../example/demo.js";
import { maxRevokeRequestBytes } from "../../example/revoke-endpoint.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { type RedisServer, redisSkip, startRedisServer } from "../helpers/redis-server.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** WhoAmI over Connect, gRPC and gRPC-Web: the subject, or the code of the refusal. */
async function whoAmIEverywhere(url: string, token: string): Promise<(string | Code)[]> {
  const transports = [
    createConnectTransport({ baseUrl: url, httpVersion: "1.1" }),
    createGrpcTransport({ baseUrl: url }),
    createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" }),
  ];
  return Promise.all(
    transports.map(async (transport) => {
      try {
        const headers = { authorization: `Bearer ${token}` };
        return (await createClient(DemoService, transport).whoAmI({}, { headers })).subject;
      } catch (err) {
        return ConnectError.from(err).code;
      }
    }),
  );
}

async function revoke(url: string, body: string, contentType = "application/json") {
  const res = await fetch(`${url}/demo/revoke`, {
    method: "POST",
    headers: { "content-type": contentType },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("POST /demo/revoke, revocations in memory", () => {
  let demo: Demo;
  let external: Demo;
  before(async () => {
    demo = await startDemo();
    // A second demo that trusts the first one's issuer, without its endpoints.
    const jwksUrl = `${demo.url}/.well-known/jwks.json`;
    external = await startDemo({
      external: { jwksUrl, issuer: demo.url, audience: demoAudience },
    });
  });
  after(async () => {
    await external?.close();
    await demo?.close();
  });

  test("a revoked jti is refused on Connect, gRPC and gRPC-Web; other tokens still pass", async () => {
    assert.equal(demo.revocations, "memory");
    const token = await demo.mintToken({ sub: "ivan" });
    const other = await demo.mintToken({ sub: "ivan" });
    assert.deepEqual(await whoAmIEverywhere(demo.url, token), ["ivan", "ivan", "ivan"]);
    const { jti } = decodeJwt(token);
    assert.deepEqual(await revoke(demo.url, JSON.stringify({ jti })), {
      status: 200,
      body: { revoked: "jti" },
    });
    const refused = Code.PermissionDenied;
    assert.deepEqual(await whoAmIEverywhere(demo.url, token), [refused, refused, refused]);
    assert.deepEqual(await whoAmIEverywhere(demo.url, other), ["ivan", "ivan", "ivan"]);
  });

  test("a revoked subject: its tokens issued before are refused, other subjects pass", async () => {
    const token = await demo.mintToken({ sub: "judy" });
    const other = await demo.mintToken({ sub: "judith" });
    assert.deepEqual(await whoAmIEverywhere(demo.url, token), ["judy", "judy", "judy"]);
    assert.deepEqual(await revoke(demo.url, JSON.stringify({ sub: "judy" })), {
      status: 200,
      body: { revoked: "sub" },
    });
    const refused = Code.PermissionDenied;
    assert.deepEqual(await whoAmIEverywhere(demo.url, token), [refused, refused, refused]);
    assert.deepEqual(await whoAmIEverywhere(demo.url, other), ["judith", "judith", "judith"]);
  });

  test("a bad request gets a typed 4xx that never repeats what was sent", async () => {
    const secret = "value-that-must-not-come-back";
    const cases: [string, string, number, string?][] = [
      ["not JSON", `{"sub": "${secret}"`, 400],
      ["an array", `["${secret}"]`, 400],
      ["no field", "{}", 400],
      ["both fields", JSON.stringify({ jti: secret, sub: secret }), 400],
      ["an unknown field", JSON.stringify({ token: secret }), 400],
      ["a number", JSON.stringify({ jti: 12345 }), 400],
      ["an empty string", JSON.stringify({ sub: "" }), 400],
      ["a long string", JSON.stringify({ sub: secret.repeat(10) }), 400],
      ["a body over the cap", JSON.stringify({ sub: secret.repeat(100) }), 413],
      ["a form", `sub=${secret}`, 415, "application/x-www-form-urlencoded"],
    ];
    assert.ok(JSON.stringify({ sub: secret.repeat(100) }).length > maxRevokeRequestBytes);
    for (const [what, body, status, contentType] of cases) {
      const answer = await revoke(demo.url, body, contentType);
      assert.equal(answer.status, status, what);
      assert.equal(typeof answer.body.error, "string", what);
      assert.ok(!JSON.stringify(answer.body).includes(secret), what);
    }
    const get = await fetch(`${demo.url}/demo/revoke`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get("allow"), "POST");
  });

  test("with an external issuer there is no /demo/revoke, and its tokens still pass", async () => {
    const answer = await revoke(external.url, JSON.stringify({ sub: "kim" }));
    assert.equal(answer.status, 404);
    const token = await demo.mintToken({ sub: "kim" });
    assert.deepEqual(await whoAmIEverywhere(external.url, token), ["kim", "kim", "kim"]);
  });
});

describe("REDIS_URL", () => {
  test("a redis:// or rediss:// URL is taken; anything else is refused without repeating it", () => {
    assert.equal(readConfig({}).redisUrl, undefined);
    assert.equal(readConfig({ REDIS_URL: " " }).redisUrl, undefined);
    const url = "redis://127.0.0.1:6379";
    assert.equal(readConfig({ REDIS_URL: url }).redisUrl, url);
    assert.equal(
      readConfig({ REDIS_URL: "rediss://cache.example:6380" }).redisUrl,
      "rediss://cache.example:6380",
    );
    for (const bad of ["http://user:hunter2@cache.example", "127.0.0.1:6379", "hunter2"]) {
      assert.throws(
        () => readConfig({ REDIS_URL: bad }),
        (err: unknown) =>
          err instanceof TypeError &&
          /REDIS_URL/.test(err.message) &&
          !err.message.includes("hunter2"),
      );
    }
  });

  test("a Redis that cannot be reached: the demo does not start, and says why", async () => {
    await assert.rejects(startDemo({ redisUrl: "redis://127.0.0.1:1" }), {
      message: "cannot reach REDIS_URL within 5 s",
    });
  });
});

/** The environment of a reader's shell, with the project's tools on PATH. */
function shellEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ["HOST", "PORT", "TOKEN", "CORS_ORIGINS", "REDIS_URL"]) {
    delete env[name];
  }
  for (const name of externalIssuerVariables) {
    delete env[name];
  }
  env.PATH = [join(root, "node_modules", ".bin"), env.PATH].join(delimiter);
  return env;
}

/** The ```sh blocks of docs/replicas.md, as lists of commands. */
async function replicaDocBlocks(): Promise<string[][]> {
  const markdown = await readFile(join(root, "docs", "replicas.md"), "utf8");
  return [...markdown.matchAll(/^```sh\n([\s\S]*?)^```/gm)].map((match) =>
    (match[1] ?? "").split("\n").filter((line) => line.trim() !== ""),
  );
}

/** A demo started by a docs line (`... npm start`) in bash, in a process group of its own. */
async function startFromDocs(command: string): Promise<{ url: string; stop(): Promise<void> }> {
  const child: ChildProcess = spawn("bash", ["-c", command], {
    cwd: root,
    env: shellEnv(),
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let output = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const stop = async () => {
    if (child.exitCode === null && child.pid !== undefined) {
      process.kill(-child.pid, "SIGTERM");
      await exited;
    }
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(output);
        if (match?.[1] !== undefined) {
          resolve(match[1]);
        }
      });
      exited.then(() => reject(new Error(`the demo exited: ${output}`)));
    });
    return { url, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Runs commands as one bash script; resolves to the output of each. */
function runScript(commands: readonly string[]): Promise<{ code: number; outputs: string[] }> {
  const marker = `--- ${randomUUID()} ---`;
  const script = [
    "set -euo pipefail",
    ...commands.flatMap((command) => [command, `printf '\\n%s\\n' '${marker}'`]),
  ].join("\n");
  return new Promise((resolve) => {
    execFile("bash", ["-c", script], { cwd: root, env: shellEnv() }, (err, stdout) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
      resolve({ code, outputs: stdout.split(`\n${marker}\n`).slice(0, -1) });
    });
  });
}

const skip = redisSkip();
if (skip !== undefined) {
  console.log(`skipping the demos sharing a Redis: ${skip}`);
}

describe("two demo processes sharing a Redis, as docs/replicas.md shows", { skip }, () => {
  let redis: RedisServer;
  const demos: { url: string; stop(): Promise<void> }[] = [];
  let calls: string[] = [];

  before(async () => {
    redis = await startRedisServer();
    const blocks = await replicaDocBlocks();
    const start = blocks.findIndex((block) => block.every((line) => line.endsWith("npm start")));
    const [first, second] = blocks[start] ?? [];
    calls = blocks[start + 1] ?? [];
    assert.ok(first && second && calls.length > 0, "the two demos and the calls of the docs");
    // As written, but on the test's Redis and on free ports.
    const here = (line: string) =>
      line.replaceAll("redis://127.0.0.1:6379", `redis://127.0.0.1:${redis.port}`);
    const one = await startFromDocs(`PORT=0 ${here(first)}`);
    demos.push(one);
    const portOf = (url: string) => new URL(url).port;
    const secondHere = here(second)
      .replace("PORT=8081", "PORT=0")
      .replaceAll("127.0.0.1:8080", `127.0.0.1:${portOf(one.url)}`);
    demos.push(await startFromDocs(secondHere));
  });
  after(async () => {
    await Promise.all(demos.map((demo) => demo.stop()));
    await redis?.stop();
  });

  test("the docs' calls: a token of the first is admitted by the second, revoked through the first, refused by the second", async () => {
    const [one, two] = demos;
    assert.ok(one && two);
    const commands = calls.map((command) =>
      command
        .replaceAll("127.0.0.1:8080", new URL(one.url).host)
        .replaceAll("127.0.0.1:8081", new URL(two.url).host),
    );
    const run = await runScript(commands);
    assert.equal(run.code, 0, commands.join("\n"));
    const [, admitted, revoked, refused] = run.outputs;
    assert.equal(JSON.parse(admitted ?? "").subject, "erin");
    assert.deepEqual(JSON.parse(revoked ?? ""), { revoked: "sub" });
    assert.deepEqual(JSON.parse(refused ?? ""), {
      code: "permission_denied",
      message: "invalid token",
    });
  });

  test("a jti revoked through the first is refused by the second on every protocol", async () => {
    const [one, two] = demos;
    assert.ok(one && two);
    const res = await fetch(`${one.url}/demo/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sub: "frank" }),
    });
    const { token } = (await res.json()) as { token: string };
    assert.deepEqual(await whoAmIEverywhere(two.url, token), ["frank", "frank", "frank"]);
    const { jti } = decodeJwt(token);
    assert.equal((await revoke(one.url, JSON.stringify({ jti }))).status, 200);
    const refused = Code.PermissionDenied;
    // Carried by Redis: the second demo hears of it within moments.
    const deadline = Date.now() + 5000;
    let seen = await whoAmIEverywhere(two.url, token);
    while (seen.some((outcome) => outcome !== refused) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      seen = await whoAmIEverywhere(two.url, token);
    }
    assert.deepEqual(seen, [refused, refused, refused]);
  });
});
