import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as tls from "node:tls";
import { fileURLToPath } from "node:url";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  generateKeyPair,
  jwtVerify,
  SignJWT,
} from "jose";
import { type BufCurlProtocol, bufCurlArgs, bufCurlProtocols } from "../../example/banner.js";
import { externalIssuerVariables, readConfig } from "../../example/config.js";
import { corsAllowedHeaders, corsExposedHeaders } from "../../example/cors.js";
import { type Demo, demoAudience, startDemo } from "../../example/demo.js";
import { selfSignedCertificate } from "../../example/x509.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { demoTransports } from "../helpers/demo-transports.js";
import {
  notesResource,
  notesScopes,
  startOidcProvider,
  type TestOidcProvider,
} from "../helpers/oidc-provider.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const buf = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));
const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));
const protocols = Object.keys(bufCurlProtocols) as BufCurlProtocol[];

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a file (or `sh -c`) from the repository root, where buf finds `proto/`. */
function run(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: root, env, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

async function mint(demo: Demo, body: unknown) {
  const res = await fetch(`${demo.url}/demo/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200);
  const { token } = (await res.json()) as { token: string };
  return token;
}

describe("demo server", () => {
  let demo: Demo;
  before(async () => {
    demo = await startDemo({ host: "127.0.0.1", port: 0 });
  });
  after(() => demo.close());

  for (const protocol of protocols) {
    it(`buf curl --protocol ${protocol}: WhoAmI sees the subject of a minted token`, async () => {
      const sub = `alice-${protocol}`;
      const token = await mint(demo, { sub, scope: "notes:read notes:write", ttl: 60 });
      const out = await run(buf, bufCurlArgs(demo.url, protocol, "WhoAmI", { token }));
      assert.equal(out.code, 0, out.stderr);
      const reply = JSON.parse(out.stdout) as Record<string, unknown>;
      assert.equal(reply.subject, sub);
      assert.deepEqual(reply.scopes, ["notes:read", "notes:write"]);
      assert.equal(reply.issuer, demo.url);
      assert.equal(JSON.parse(String(reply.claimsJson)).aud, demoAudience);
    });

    it(`buf curl --protocol ${protocol}: WhoAmI without a token is permission_denied`, async () => {
      const out = await run(buf, bufCurlArgs(demo.url, protocol, "WhoAmI"));
      // buf curl exits with the RPC code times 8: permission_denied (7) gives 56.
      assert.equal(out.code, Code.PermissionDenied * 8);
      assert.equal(JSON.parse(out.stderr).code, "permission_denied");
      assert.equal(out.stdout, "");
    });

    it(`buf curl --protocol ${protocol}: Ping needs no token`, async () => {
      const args = bufCurlArgs(demo.url, protocol, "Ping", { data: '{"text":"hi"}' });
      const out = await run(buf, args);
      assert.equal(out.code, 0, out.stderr);
      assert.deepEqual(JSON.parse(out.stdout), { text: "hi" });
    });
  }

  it("serves an OIDC discovery document that points at its JWKS", async () => {
    const res = await fetch(`${demo.url}/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    const doc = (await res.json()) as Record<string, unknown>;
    assert.equal(doc.issuer, demo.url);
    assert.equal(doc.jwks_uri, `${demo.url}/.well-known/jwks.json`);
    assert.deepEqual(doc.id_token_signing_alg_values_supported, ["ES256"]);
    const jwks = (await (await fetch(String(doc.jwks_uri))).json()) as { keys: object[] };
    assert.equal(jwks.keys.length, 1);
    const [key] = jwks.keys as Record<string, unknown>[];
    assert.equal(key?.kty, "EC");
    assert.equal(key?.crv, "P-256");
    assert.equal(key?.alg, "ES256");
    assert.equal(key?.use, "sig");
    assert.equal(typeof key?.kid, "string");
    assert.equal(key?.d, undefined, "the JWKS must not hold the private key");
  });

  it("POST /demo/token mints an ES256 token that its JWKS verifies", async () => {
    const token = await mint(demo, { sub: "bob", scope: "notes:read", ttl: 120 });
    const jwks = await (await fetch(`${demo.url}/.well-known/jwks.json`)).json();
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), {
      algorithms: ["ES256"],
      issuer: demo.url,
      audience: demoAudience,
    });
    assert.equal(protectedHeader.kid, demo.issuer?.publicJwk.kid);
    assert.equal(payload.sub, "bob");
    assert.equal(payload.scope, "notes:read");
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 120);
    assert.equal(typeof payload.jti, "string");
    // Defaults: every field is optional.
    const plain = await mint(demo, {});
    assert.equal(decodeProtectedHeader(plain).alg, "ES256");
  });

  it("POST /demo/token refuses bad input with 400 and does not echo it", async () => {
    const canary = "CANARY";
    const bodies = [
      JSON.stringify({ sub: canary.repeat(43) }), // 258 characters
      JSON.stringify({ sub: "" }),
      JSON.stringify({ sub: 42 }),
      JSON.stringify({ scope: `${canary} `.repeat(150) }), // 1050 characters
      JSON.stringify({ scope: `${canary}\n` }),
      JSON.stringify({ ttl: 0 }),
      JSON.stringify({ ttl: 86_401 }),
      JSON.stringify({ ttl: 1.5 }),
      JSON.stringify({ ttl: "300" }),
      JSON.stringify({ [canary]: 1 }),
      JSON.stringify([canary]),
      "null",
      `{"sub": "${canary}"`,
    ];
    for (const body of bodies) {
      const res = await fetch(`${demo.url}/demo/token`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      const text = await res.text();
      assert.equal(res.status, 400, body);
      assert.equal(typeof JSON.parse(text).error, "string");
      assert.ok(!text.includes(canary), `echoed: ${text}`);
    }
  });

  it("POST /demo/token refuses large bodies, other content types and GET", async () => {
    const url = `${demo.url}/demo/token`;
    const json = { "content-type": "application/json" };
    const large = JSON.stringify({ sub: "x", pad: " ".repeat(16 * 1024) });
    assert.equal((await fetch(url, { method: "POST", headers: json, body: large })).status, 413);
    const form = { "content-type": "application/x-www-form-urlencoded" };
    assert.equal((await fetch(url, { method: "POST", headers: form, body: "sub=x" })).status, 415);
    assert.equal((await fetch(url)).status, 405);
  });

  it("answers a CORS preflight for the Authorization header", async () => {
    const res = await fetch(`${demo.url}/demo.v1.DemoService/WhoAmI`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization",
      },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), "https://app.example");
    assert.equal(res.headers.get("access-control-allow-methods"), "GET, POST");
    const allowed = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    for (const header of [...corsAllowedHeaders, "Authorization"]) {
      assert.ok(allowed.split(", ").includes(header.toLowerCase()), header);
    }
    assert.match(res.headers.get("access-control-max-age") ?? "", /^\d+$/);
    assert.match(res.headers.get("vary") ?? "", /Origin/);
  });

  it("adds CORS headers to RPC answers and exposes WWW-Authenticate", async () => {
    const res = await fetch(`${demo.url}/demo.v1.DemoService/WhoAmI`, {
      method: "POST",
      headers: { origin: "https://app.example", "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(res.status, 403);
    // The demo accepts DPoP beside Bearer: both schemes are offered.
    assert.equal(
      res.headers.get("www-authenticate"),
      'Bearer, DPoP algs="ES256 EdDSA PS256 RS256"',
    );
    assert.equal(res.headers.get("access-control-allow-origin"), "https://app.example");
    const exposed = (res.headers.get("access-control-expose-headers") ?? "").split(", ");
    assert.deepEqual(exposed, [...corsExposedHeaders]);
    assert.ok(exposed.includes("WWW-Authenticate"));
    assert.match(res.headers.get("vary") ?? "", /Origin/);
  });

  it("GET /about says what the server is and lists the endpoints", async () => {
    const res = await fetch(`${demo.url}/about`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
    const text = await res.text();
    for (const part of ["connect-jwt", "/demo.v1.DemoService/WhoAmI", "/demo/token", "jwks"]) {
      assert.ok(text.includes(part), part);
    }
    assert.equal((await fetch(`${demo.url}/nothing-here`)).status, 404);
  });

  it("GET / is the web page; its script and style sheet are bundled in memory", async () => {
    const page = await fetch(demo.url);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    const csp = page.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self';/, "no inline script");
    assert.equal(page.headers.get("x-content-type-options"), "nosniff");
    const html = await page.text();
    assert.match(html, /<title>connect-jwt demo<\/title>/);
    assert.match(html, /<body data-issuer="embedded">/);
    assert.match(html, /<script type="module" src="\/app\.js"><\/script>/);
    assert.match(html, /<link rel="stylesheet" href="\/style\.css" \/>/);
    for (const id of ["token-form", "whoami-connect", "whoami-grpcweb", "listnotes-connect"]) {
      assert.ok(html.includes(`id="${id}"`), id);
    }
    const script = await fetch(`${demo.url}/app.js`);
    assert.match(script.headers.get("content-type") ?? "", /^text\/javascript/);
    const code = await script.text();
    // connect-web, the generated service and bearerAuth are in the bundle.
    for (const part of ["var DemoService", "application/grpc-web", "function bearerAuth("]) {
      assert.ok(code.includes(part), part);
    }
    assert.doesNotMatch(code, /^import /m, "not bundled");
    const style = await fetch(`${demo.url}/style.css`);
    assert.match(style.headers.get("content-type") ?? "", /^text\/css/);
    assert.match(await style.text(), /#result-status/);
    assert.equal((await fetch(demo.url, { method: "POST" })).status, 405);
    assert.equal((await fetch(demo.url, { method: "HEAD" })).status, 200);
  });

  const transports = demoTransports;
  for (const [name, transport] of Object.entries(transports)) {
    it(`${name}: unary and server streaming with a token, refused without`, async () => {
      const token = await demo.mintToken({ sub: "carol", scope: "notes:read" });
      const bearer: Interceptor = (next) => (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      };
      const client = createClient(DemoService, transport(demo.url, [bearer]));
      assert.equal((await client.whoAmI({})).subject, "carol");
      assert.equal((await client.ping({ text: "x" })).subject, "carol");
      const notes = [];
      for await (const res of client.listNotes({})) {
        notes.push(res.note);
      }
      assert.equal(notes.length, 3);
      assert.ok(notes.every((note) => note?.owner === "carol"));
      const anonymous = createClient(DemoService, transport(demo.url, []));
      assert.equal((await anonymous.ping({})).subject, "");
      await assert.rejects(anonymous.whoAmI({}), (err) => {
        return ConnectError.from(err).code === Code.PermissionDenied;
      });
    });
  }

  it("grpc over HTTP/2: client and bidi streaming carry the subject", async () => {
    const token = await demo.mintToken({ sub: "dave", scope: "notes:write chat" });
    const client = createClient(DemoService, createGrpcTransport({ baseUrl: demo.url }));
    const headers = { authorization: `Bearer ${token}` };
    async function* texts() {
      yield { text: "one" };
      yield { text: "two" };
    }
    assert.deepEqual(await client.uploadNotes(texts(), { headers }), {
      $typeName: "demo.v1.UploadNotesResponse",
      count: 2,
      owner: "dave",
    });
    const echoes = [];
    for await (const res of client.chat(texts(), { headers })) {
      echoes.push(`${res.subject}: ${res.text}`);
    }
    assert.deepEqual(echoes, ["dave: one", "dave: two"]);
  });
});

describe("demo server options", () => {
  it("CORS_ORIGINS restricts which origins get CORS headers", async () => {
    const demo = await startDemo({ corsOrigins: ["https://app.example"] });
    try {
      const preflight = (origin: string) =>
        fetch(`${demo.url}/demo.v1.DemoService/WhoAmI`, {
          method: "OPTIONS",
          headers: { origin, "access-control-request-method": "POST" },
        });
      const allowed = await preflight("https://app.example");
      assert.equal(allowed.headers.get("access-control-allow-origin"), "https://app.example");
      const other = await preflight("https://evil.example");
      assert.equal(other.status, 204);
      assert.equal(other.headers.get("access-control-allow-origin"), null);
      assert.equal(other.headers.get("access-control-allow-headers"), null);
    } finally {
      await demo.close();
    }
  });

  it("close() ends an open stream with Unavailable instead of waiting for it", async () => {
    const demo = await startDemo({ drainTimeoutMs: 5000 });
    const token = await demo.mintToken({ scope: "chat" });
    const client = createClient(DemoService, createGrpcTransport({ baseUrl: demo.url }));
    let stop = () => {};
    async function* idle() {
      yield { text: "hello" };
      await new Promise<void>((resolve) => {
        stop = resolve;
      });
    }
    try {
      const replies = client.chat(idle(), { headers: { authorization: `Bearer ${token}` } });
      const iterator = replies[Symbol.asyncIterator]();
      assert.equal((await iterator.next()).value?.text, "hello");
      const started = Date.now();
      await demo.close();
      assert.ok(Date.now() - started < 2000, "close() waited for the idle stream");
      await assert.rejects(iterator.next(), (err) => {
        return ConnectError.from(err).code === Code.Unavailable;
      });
    } finally {
      // Also when an assertion failed: an open server would keep the test process alive.
      stop();
      await demo.close();
    }
  });
});

describe("readConfig: the external issuer variables", () => {
  const issuerUrl = "https://auth.example.test/";
  const jwksUrl = "https://auth.example.test/keys";
  const issuer = "https://auth.example.test/";

  it("no JWT_* variable: the embedded issuer", () => {
    assert.equal(readConfig({}).external, undefined);
    assert.equal(readConfig({ JWT_ISSUER_URL: "", JWT_AUDIENCE: " " }).external, undefined);
  });

  it("JWT_ISSUER_URL: discovery, with JWT_AUDIENCE or the demo's audience", () => {
    assert.deepEqual(readConfig({ JWT_ISSUER_URL: issuerUrl }).external, {
      issuerUrl,
      audience: demoAudience,
    });
    assert.deepEqual(readConfig({ JWT_ISSUER_URL: issuerUrl, JWT_AUDIENCE: "api" }).external, {
      issuerUrl,
      audience: "api",
    });
  });

  it("JWT_JWKS_URL: with JWT_ISSUER and JWT_AUDIENCE", () => {
    const env = { JWT_JWKS_URL: jwksUrl, JWT_ISSUER: issuer, JWT_AUDIENCE: "api" };
    assert.deepEqual(readConfig(env).external, { jwksUrl, issuer, audience: "api" });
  });

  const mistakes: [string, Record<string, string>, RegExp][] = [
    [
      "JWKS URL without issuer",
      { JWT_JWKS_URL: jwksUrl, JWT_AUDIENCE: "api" },
      /^JWT_JWKS_URL also needs JWT_ISSUER \(/,
    ],
    [
      "JWKS URL without audience",
      { JWT_JWKS_URL: jwksUrl, JWT_ISSUER: issuer },
      /^JWT_JWKS_URL also needs JWT_AUDIENCE \(/,
    ],
    [
      "JWKS URL alone",
      { JWT_JWKS_URL: jwksUrl },
      /^JWT_JWKS_URL also needs JWT_ISSUER \(.*\) and JWT_AUDIENCE \(/,
    ],
    ["both URLs", { JWT_JWKS_URL: jwksUrl, JWT_ISSUER_URL: issuerUrl }, /not both/],
    [
      "issuer URL with an issuer",
      { JWT_ISSUER_URL: issuerUrl, JWT_ISSUER: issuer },
      /unset JWT_ISSUER$/,
    ],
    [
      "an audience alone",
      { JWT_AUDIENCE: "api" },
      /^JWT_AUDIENCE needs JWT_ISSUER_URL .* or JWT_JWKS_URL/,
    ],
    ["an issuer alone", { JWT_ISSUER: issuer }, /^JWT_ISSUER needs JWT_ISSUER_URL/],
    [
      "an issuer URL that is no URL",
      { JWT_ISSUER_URL: "auth.example.test" },
      /^JWT_ISSUER_URL must be an https URL/,
    ],
    [
      "a JWKS URL of another scheme",
      { JWT_JWKS_URL: "ftp://auth.example.test/k", JWT_ISSUER: issuer, JWT_AUDIENCE: "api" },
      /^JWT_JWKS_URL must be an https URL/,
    ],
  ];
  for (const [name, env, message] of mistakes) {
    it(`${name}: a TypeError naming the variable, not the value`, () => {
      assert.throws(
        () => readConfig(env),
        (err: unknown) => {
          assert.ok(err instanceof TypeError);
          assert.match(err.message, message);
          for (const value of Object.values(env)) {
            assert.ok(!err.message.includes(value), `echoed ${value}`);
          }
          return true;
        },
      );
    });
  }
});

// The audience of the demo's default configuration, as a resource of the provider.
const demoResource = "https://demo.example/";

/** Clients of the demo with a bearer token, on the protocols it serves. */
const externalTransports = {
  "connect over HTTP/1.1": (baseUrl: string) =>
    createConnectTransport({ baseUrl, httpVersion: "1.1" }),
  "grpc over HTTP/2 (h2c)": (baseUrl: string) => createGrpcTransport({ baseUrl }),
  "grpc-web over HTTP/1.1": (baseUrl: string) =>
    createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
};

describe("demo server with an external issuer (oidc-provider)", () => {
  let op: TestOidcProvider;
  before(async () => {
    op = await startOidcProvider({
      resources: { [demoResource]: demoAudience, [notesResource]: notesResource },
    });
  });
  after(() => op.close());

  const modes: {
    name: string;
    env: () => Record<string, string>;
    resource: string;
    wrong: string;
  }[] = [
    {
      name: "JWT_ISSUER_URL (discovery, default audience)",
      env: () => ({ JWT_ISSUER_URL: op.issuer }),
      resource: demoResource,
      wrong: notesResource,
    },
    {
      name: "JWT_JWKS_URL with JWT_ISSUER and JWT_AUDIENCE",
      env: () => ({ JWT_JWKS_URL: op.jwksUri, JWT_ISSUER: op.issuer, JWT_AUDIENCE: notesResource }),
      resource: notesResource,
      wrong: demoResource,
    },
  ];
  for (const mode of modes) {
    describe(mode.name, () => {
      let demo: Demo;
      before(async () => {
        const { external } = readConfig(mode.env());
        assert.ok(external !== undefined);
        demo = await startDemo({ external });
      });
      after(() => demo.close());

      it("loads the provider's keys at warm-up", async () => {
        const before = op.requests("/jwks");
        await demo.warmUp();
        assert.equal(op.requests("/jwks"), before + 1);
      });

      for (const [name, transport] of Object.entries(externalTransports)) {
        it(`${name}: WhoAmI accepts the provider's token, refuses another audience`, async () => {
          const client = createClient(DemoService, transport(demo.url));
          const headers = {
            authorization: `Bearer ${await op.token({ resource: mode.resource })}`,
          };
          const reply = await client.whoAmI({}, { headers });
          assert.equal(reply.subject, op.clientId);
          assert.equal(reply.issuer, op.issuer);
          assert.deepEqual(reply.scopes, notesScopes.split(" "));
          assert.equal(JSON.parse(reply.claimsJson).client_id, op.clientId);
          const notes = [];
          for await (const res of client.listNotes({ limit: 2 }, { headers })) {
            notes.push(res.note?.owner);
          }
          assert.deepEqual(notes, [op.clientId, op.clientId]);
          const wrong = await op.token({ resource: mode.wrong });
          for (const authorization of [`Bearer ${wrong}`, undefined]) {
            await assert.rejects(
              client.whoAmI({}, { headers: authorization ? { authorization } : {} }),
              (err) => ConnectError.from(err).code === Code.PermissionDenied,
            );
          }
        });
      }

      it("serves no issuer endpoints, mints no token, and says whom it trusts", async () => {
        const token = await fetch(`${demo.url}/demo/token`, { method: "POST", body: "{}" });
        assert.equal(token.status, 404);
        for (const path of ["/.well-known/openid-configuration", "/.well-known/jwks.json"]) {
          assert.equal((await fetch(`${demo.url}${path}`)).status, 404, path);
        }
        assert.equal(demo.issuer, undefined);
        await assert.rejects(demo.mintToken({}), /external issuer/);
        const about = await (await fetch(`${demo.url}/about`)).text();
        assert.ok(about.includes(op.issuer), about);
        assert.ok(!about.includes("/demo/token"), about);
        // The page asks for a token to paste instead of minting one.
        assert.match(await (await fetch(demo.url)).text(), /<body data-issuer="external">/);
      });
    });
  }
});

describe("npm start (example/server.ts)", () => {
  // The environment of `npm start`, without anything that changes its mode.
  function env(extra: Record<string, string>): NodeJS.ProcessEnv {
    const base = { ...process.env };
    for (const name of ["HOST", "CORS_ORIGINS", ...externalIssuerVariables]) {
      delete base[name];
    }
    return { ...base, PORT: "0", ...extra };
  }

  /** `npm start -- <args>` as a child process, its output collected. */
  function start(extra: Record<string, string> = {}, args: string[] = []) {
    const child: ChildProcess = spawn(process.execPath, [tsx, "example/server.ts", ...args], {
      cwd: root,
      env: env(extra),
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exit = new Promise<number | null>((resolve) => {
      if (child.exitCode !== null) {
        resolve(child.exitCode);
      } else {
        child.once("exit", (code) => resolve(code));
      }
    });
    const out = { stdout: "", stderr: "" };
    child.stdout?.on("data", (chunk: Buffer) => {
      out.stdout += chunk.toString();
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      out.stderr += chunk.toString();
    });
    /** Resolves to the server's URL once stdout matches `pattern`. */
    async function until(pattern: RegExp): Promise<string> {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => {
          const check = () => pattern.test(out.stdout) && resolve();
          child.stdout?.on("data", check);
          check();
        }),
        exit.then((code) => assert.fail(`exited early (${code}): ${out.stderr}`)),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no banner: ${out.stdout}${out.stderr}`)),
            8000,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      const url = /listening on (https?:\/\/127\.0\.0\.1:(\d+))$/m.exec(out.stdout);
      assert.ok(url?.[1] !== undefined, out.stdout);
      assert.notEqual(Number(url[2]), 0);
      return url[1];
    }
    return { child, exit, out, until };
  }

  /** Runs every printed `npx buf curl` line as printed, with `$TOKEN` set. */
  async function runPrinted(stdout: string, token: string) {
    const lines = stdout.split("\n").filter((line) => line.startsWith("npx buf curl "));
    assert.ok(lines.length >= 3, stdout);
    const runs = await Promise.all(
      lines.map((line) =>
        run("sh", ["-c", line.replace(/^npx buf /, `"${buf}" `)], {
          ...process.env,
          TOKEN: token,
        }),
      ),
    );
    for (const [i, out] of runs.entries()) {
      assert.equal(out.code, 0, `${lines[i]}\n${out.stderr}`);
    }
    return runs;
  }

  it("serves on the port it prints, the printed commands work, SIGTERM stops it", async () => {
    const server = start();
    const { out } = server;
    try {
      // The banner ends with the token-minting command.
      const url = await server.until(/\/demo\/token\n/);
      const ping = await fetch(`${url}/demo.v1.DemoService/Ping`, {
        method: "POST",
        headers: { "content-type": "application/json", "connect-protocol-version": "1" },
        body: '{"text":"up"}',
      });
      assert.deepEqual(await ping.json(), { text: "up" });

      // Run every printed buf curl line as printed, with the printed token.
      const token = /^export TOKEN=(\S+)$/m.exec(out.stdout)?.[1];
      assert.ok(token !== undefined);
      const runs = await runPrinted(out.stdout, token);
      assert.ok(runs.filter((r) => r.stdout.includes('"subject": "demo"')).length >= 3);

      // A refused token is logged by reason, never by value.
      const bad = `${token.slice(0, -8)}AAAAAAAA`;
      const denied = await run(buf, bufCurlArgs(url, "connect", "WhoAmI", { token: bad }));
      assert.equal(denied.code, Code.PermissionDenied * 8);
      server.child.kill("SIGTERM");
      assert.equal(await server.exit, 0);
      const afterBanner = out.stdout.slice(out.stdout.indexOf("/demo/token\n"));
      assert.match(afterBanner, /denied demo\.v1\.DemoService\/WhoAmI/);
      assert.ok(!afterBanner.includes(bad) && !out.stderr.includes(bad));
      assert.ok(!afterBanner.includes(token.split(".")[2] ?? token));
    } finally {
      server.child.kill("SIGKILL");
    }
  });

  it("--tls: https with a self-signed certificate, the printed commands work with --insecure", async () => {
    const server = start({}, ["--tls"]);
    const { out } = server;
    try {
      const url = await server.until(/\/demo\/token\n/);
      assert.match(url, /^https:/);
      assert.match(
        out.stdout,
        /^ {2}tls: +self-signed certificate for localhost, 127\.0\.0\.1 and ::1/m,
      );
      assert.match(out.stdout, new RegExp(`^ {2}web page: +${url}/$`, "m"));
      // The printed fingerprint is the one of the certificate served.
      const printed = /SHA-256 ([0-9A-F:]{95})$/m.exec(out.stdout)?.[1];
      assert.ok(printed !== undefined, out.stdout);
      const socket = tls.connect({
        host: "127.0.0.1",
        port: Number(new URL(url).port),
        rejectUnauthorized: false,
        servername: "localhost",
        ALPNProtocols: ["h2"],
      });
      await new Promise((resolve) => socket.once("secureConnect", resolve));
      assert.equal(socket.getPeerX509Certificate()?.fingerprint256, printed);
      assert.equal(socket.alpnProtocol, "h2");
      socket.destroy();

      const lines = out.stdout.split("\n").filter((line) => line.startsWith("npx buf curl "));
      assert.ok(
        lines.every((line) => line.includes(" --insecure ")),
        lines.join("\n"),
      );
      assert.ok(
        lines.every((line) => !line.includes("--http2-prior-knowledge")),
        "h2c over TLS",
      );
      const token = /^export TOKEN=(\S+)$/m.exec(out.stdout)?.[1];
      assert.ok(token !== undefined);
      const runs = await runPrinted(out.stdout, token);
      assert.ok(runs.filter((r) => r.stdout.includes('"subject": "demo"')).length >= 3);

      // The printed curl line mints a token (curl needs -k too).
      const mintLine = out.stdout.split("\n").find((line) => line.startsWith("curl "));
      assert.match(mintLine ?? "", /^curl -sk -X POST /);
      if (existsSync("/usr/bin/curl")) {
        const minted = await run("sh", ["-c", mintLine ?? ""]);
        assert.equal(minted.code, 0, minted.stderr);
        assert.match(JSON.parse(minted.stdout).token, /^eyJ/);
      }
      server.child.kill("SIGTERM");
      assert.equal(await server.exit, 0);
    } finally {
      server.child.kill("SIGKILL");
    }
  });

  it("--cert and --key: serves that certificate; a wrong pair or file exits with 2", async () => {
    const dir = await mkdtemp(join(tmpdir(), "connect-jwt-tls-"));
    const mine = selfSignedCertificate();
    const other = selfSignedCertificate();
    const files = {
      cert: join(dir, "cert.pem"),
      key: join(dir, "key.pem"),
      otherKey: join(dir, "other-key.pem"),
    };
    await Promise.all([
      writeFile(files.cert, mine.cert),
      writeFile(files.key, mine.key),
      writeFile(files.otherKey, other.key),
    ]);
    const server = start({}, ["--cert", files.cert, "--key", files.key]);
    try {
      const url = await server.until(/\/demo\/token\n/);
      assert.match(server.out.stdout, /^ {2}tls: +the certificate of --cert$/m);
      assert.ok(server.out.stdout.includes(new X509Certificate(mine.cert).fingerprint256));
      assert.ok(!server.out.stdout.includes(" --insecure "), "the certificate is not self-made");
      const client = createClient(
        DemoService,
        createGrpcTransport({ baseUrl: url, nodeOptions: { ca: mine.cert } }),
      );
      assert.deepEqual((await client.ping({ text: "tls" })).text, "tls");
      server.child.kill("SIGTERM");
      assert.equal(await server.exit, 0);

      const cases: [string[], RegExp][] = [
        [["--cert", files.cert], /--cert needs --key/],
        [
          ["--cert", files.cert, "--key", files.otherKey],
          /--cert and --key do not make a usable pair/,
        ],
        [
          ["--cert", join(dir, "missing.pem"), "--key", files.key],
          /--cert: cannot read .*missing\.pem \(ENOENT\)/,
        ],
        [["--tsl"], /Unknown option '--tsl'/],
      ];
      const outs = await Promise.all(
        cases.map(([args]) => run(process.execPath, [tsx, "example/server.ts", ...args], env({}))),
      );
      for (const [i, res] of outs.entries()) {
        assert.equal(res.code, 2, res.stderr);
        assert.match(res.stderr, cases[i]?.[1] ?? /$^/);
        assert.ok(!res.stderr.includes("PRIVATE KEY"), "printed the key");
        assert.equal(res.stdout, "");
      }
    } finally {
      server.child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("exits with 2, naming the variable, when the external issuer is misconfigured", async () => {
    const jwksUrl = "https://issuer.example/keys";
    const cases: [Record<string, string>, RegExp][] = [
      [{ JWT_JWKS_URL: jwksUrl, JWT_AUDIENCE: "api" }, /JWT_JWKS_URL also needs JWT_ISSUER \(/],
      [{ JWT_JWKS_URL: jwksUrl, JWT_ISSUER: "https://issuer.example/" }, /needs JWT_AUDIENCE \(/],
      // Plain http is for loopback only: connect-jwt refuses it, and that is a usage error too.
      [{ JWT_ISSUER_URL: "http://issuer.example/" }, /issuerUrl must use https/],
    ];
    const outs = await Promise.all(
      cases.map(([vars]) => run(process.execPath, [tsx, "example/server.ts"], env(vars))),
    );
    for (const [i, out] of outs.entries()) {
      const [vars, message] = cases[i] ?? [{}, /$^/];
      assert.equal(out.code, 2, out.stderr);
      assert.match(out.stderr, message);
      for (const value of Object.values(vars)) {
        assert.ok(!out.stderr.includes(value), `printed ${value}`);
      }
      assert.equal(out.stdout, "");
    }
  });

  it("JWT_ISSUER_URL: trusts the provider, mints nothing, the printed commands work with its token", async () => {
    const op = await startOidcProvider({ resources: { [demoResource]: demoAudience } });
    const server = start({ JWT_ISSUER_URL: op.issuer });
    const { out } = server;
    try {
      // The external banner ends with the ListNotes command.
      const url = await server.until(/ListNotes\n/);
      assert.equal(op.requests("/jwks"), 1, "warmed up before the banner");
      assert.match(
        out.stdout,
        new RegExp(`issuer: +${op.issuer} \\(OIDC discovery\\), audience ${demoAudience}`),
      );
      assert.match(out.stdout, /^export TOKEN=<the access token>$/m);
      assert.doesNotMatch(out.stdout, /eyJ/, "printed a token");
      assert.equal(out.stderr, "");
      assert.equal((await fetch(`${url}/demo/token`, { method: "POST" })).status, 404);

      const token = await op.token({ resource: demoResource });
      const runs = await runPrinted(out.stdout, token);
      const whoAmI = runs.filter((r) => r.stdout.includes(`"subject": "${op.clientId}"`));
      assert.equal(whoAmI.length, 3, "WhoAmI over connect, grpc and grpcweb");
      server.child.kill("SIGTERM");
      assert.equal(await server.exit, 0);
      assert.ok(!out.stdout.includes(token.split(".")[2] ?? token), "logged the token");
    } finally {
      server.child.kill("SIGKILL");
      await op.close();
    }
  });

  it("JWT_JWKS_URL of an issuer that is down: a warning, then it serves and answers Unavailable", async () => {
    const down = http.createServer((_req, res) => res.writeHead(503).end());
    await new Promise<void>((resolve) => down.listen(0, "127.0.0.1", resolve));
    const jwksUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}/jwks`;
    const issuer = "https://down.example/";
    const server = start({ JWT_JWKS_URL: jwksUrl, JWT_ISSUER: issuer, JWT_AUDIENCE: "api" });
    try {
      const url = await server.until(/ListNotes\n/);
      assert.match(server.out.stderr, /warning: cannot load the issuer's keys yet/);
      assert.match(server.out.stdout, /issuer: +https:\/\/down\.example\/, keys from http:\/\/127/);
      const rpc = (authorization?: string) =>
        fetch(`${url}/demo.v1.DemoService/WhoAmI`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(authorization === undefined ? {} : { authorization }),
          },
          body: "{}",
        });
      const { privateKey } = await generateKeyPair("ES256");
      const token = await new SignJWT({ sub: "x" })
        .setProtectedHeader({ alg: "ES256", kid: "k" })
        .setIssuer(issuer)
        .setAudience("api")
        .setExpirationTime("5m")
        .sign(privateKey);
      const unavailable = await rpc(`Bearer ${token}`);
      assert.equal(unavailable.status, 503);
      assert.equal(((await unavailable.json()) as { code: string }).code, "unavailable");
      assert.equal((await rpc()).status, 403, "no token is still refused as such");
      server.child.kill("SIGTERM");
      assert.equal(await server.exit, 0);
    } finally {
      server.child.kill("SIGKILL");
      down.closeAllConnections();
      await new Promise<void>((resolve) => down.close(() => resolve()));
    }
  });
});
