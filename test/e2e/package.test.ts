// The package as users get it: `npm pack`, installed into a fresh project,
// its entry points imported (ESM, and require() from CommonJS), and one
// authenticated call made through it.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { transform } from "esbuild";

const root = join(import.meta.dirname, "..", "..");
const run = promisify(execFile);
const npm = process.env.npm_execpath === undefined ? "npm" : process.execPath;
const npmArgs = (args: string[]) =>
  process.env.npm_execpath === undefined ? args : [process.env.npm_execpath, ...args];

const consumer = `
import * as http2 from "node:http2";
import { createClient } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { createJwtAuth, requireClaims } from "connect-jwt";
import { bearerAuth } from "connect-jwt/client";
import { createTestIssuer } from "connect-jwt/testing";
import { DemoService } from "./gen/demo/v1/demo_pb.js";

const issuer = await createTestIssuer();
const auth = createJwtAuth({ issuerUrl: issuer.issuer, audience: issuer.audience });
const server = http2.createServer(connectNodeAdapter({
  routes: (router) => router.service(DemoService, { whoAmI: (_req, ctx) => ({ subject: requireClaims(ctx).sub }) }),
  interceptors: [auth.interceptor],
  requestGate: auth.requestGate,
}));
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const token = await issuer.sign({ sub: "from-the-tarball" });
const client = createClient(DemoService, createGrpcTransport({
  baseUrl: "http://127.0.0.1:" + server.address().port,
  interceptors: [bearerAuth(token)],
}));
const { subject } = await client.whoAmI({});
let refused = "";
try {
  await createClient(DemoService, createGrpcTransport({ baseUrl: "http://127.0.0.1:" + server.address().port })).whoAmI({});
} catch (err) {
  refused = err.rawMessage;
}
console.log(JSON.stringify({ subject, refused }));
server.close();
await issuer.close();
process.exit(0);
`;

const requirer = `
const server = require("connect-jwt");
const client = require("connect-jwt/client");
const testing = require("connect-jwt/testing");
// Neither redis nor ioredis is installed: connect-jwt/redis only calls the client it is given.
const redis = require("connect-jwt/redis");
console.log(JSON.stringify({
  server: typeof server.createJwtAuth,
  client: typeof client.bearerAuth,
  testing: typeof testing.createTestIssuer,
  redis: typeof redis.redisRevocations,
}));
`;

describe("the packed package", () => {
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), "connect-jwt-pack-"));
    const { stdout } = await run(npm, npmArgs(["pack", "--json", "--pack-destination", work]), {
      cwd: root,
      timeout: 120_000,
    });
    const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
    const project = join(work, "project");
    await mkdir(project);
    await writeFile(
      join(project, "package.json"),
      JSON.stringify({ name: "consumer", private: true, type: "module" }),
    );
    const { devDependencies } = JSON.parse(await readFile(join(root, "package.json"), "utf8"));
    const peers = ["@connectrpc/connect", "@connectrpc/connect-node", "@bufbuild/protobuf"].map(
      (name) => `${name}@${devDependencies[name]}`,
    );
    await run(
      npm,
      npmArgs([
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        join(work, filename),
        ...peers,
      ]),
      {
        cwd: project,
        timeout: 300_000,
      },
    );
    // Users generate their own code; here the demo's, stripped to JavaScript.
    for (const file of await readdir(join(root, "gen"), { recursive: true })) {
      if (!file.endsWith(".ts")) continue;
      const { code } = await transform(await readFile(join(root, "gen", file), "utf8"), {
        loader: "ts",
        format: "esm",
      });
      const target = join(project, "gen", file.replace(/\.ts$/, ".js"));
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, code);
    }
    await writeFile(join(project, "consumer.js"), consumer);
    await writeFile(join(project, "requirer.cjs"), requirer);
  });
  after(() => rm(work, { recursive: true, force: true }));

  test("holds only what users need", async () => {
    const { stdout } = await run(npm, npmArgs(["pack", "--dry-run", "--json"]), {
      cwd: root,
      timeout: 120_000,
    });
    const [{ files }] = JSON.parse(stdout) as [{ files: { path: string }[] }];
    const paths = files.map((f) => f.path);
    for (const path of paths) {
      assert.match(
        path,
        /^(dist\/|src\/|gen\/connectjwt\/|proto\/connectjwt\/|README\.md$|LICENSE$|package\.json$)/,
        path,
      );
    }
    for (const needed of [
      "dist/src/index.js",
      "dist/src/index.d.ts",
      "dist/src/client/index.js",
      "dist/src/testing/index.js",
      "dist/src/otel/index.js",
      "dist/src/redis/index.js",
      "proto/connectjwt/v1/auth.proto",
      "LICENSE",
    ]) {
      assert.ok(paths.includes(needed), `missing ${needed}`);
    }
    assert.ok(!paths.some((p) => p.startsWith("test/") || p.startsWith("example/")));
  });

  test("works from an install: ESM imports of all three entry points, one authenticated call", async () => {
    const { stdout } = await run(process.execPath, ["consumer.js"], {
      cwd: join(work, "project"),
      timeout: 60_000,
    });
    assert.deepEqual(JSON.parse(stdout), {
      subject: "from-the-tarball",
      refused: "missing bearer token",
    });
  });

  // require(esm) is on by default from Node.js 20.19 and 22.12: the pinned
  // Node.js, and the system's Node.js 20 when there is one.
  const nodes = [
    process.execPath,
    ...["/usr/bin/node"].filter((p) => existsSync(p) && p !== process.execPath),
  ];
  for (const node of nodes) {
    test(`CommonJS consumers load it with require() on ${node}`, async () => {
      const { stdout } = await run(node, ["requirer.cjs"], {
        cwd: join(work, "project"),
        timeout: 60_000,
      });
      assert.deepEqual(JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}"), {
        server: "function",
        client: "function",
        testing: "function",
        redis: "function",
      });
    });
  }

  test("ships auth.proto where the exports map says", async () => {
    const path = join(
      work,
      "project",
      "node_modules",
      "connect-jwt",
      "proto",
      "connectjwt",
      "v1",
      "auth.proto",
    );
    assert.match(await readFile(path, "utf8"), /extend google\.protobuf\.MethodOptions/);
  });
});
