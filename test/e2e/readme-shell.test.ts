// Every shell command of the README, CONTRIBUTING.md and docs/*.md, run with bash against
// the demo server (example/server.ts, what `npm start` runs) on a free port;
// and the commands the demo prints at start, run as printed. What a reader
// pastes must work.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { glob, readFile } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { sampleTokenRequest } from "../../example/banner.js";
import { externalIssuerVariables } from "../../example/config.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const tsx = join(root, "node_modules", ".bin", "tsx");

/**
 * Commands that cannot run against the demo by nature, each with the reason.
 * Keep this list small: any other command of the docs must run.
 */
const notRunHere: ReadonlyMap<string, string> = new Map([
  [
    "npm install connect-jwt @connectrpc/connect @bufbuild/protobuf",
    "installs the package into a project of the reader's",
  ],
  ["npm install && npm start", "installs packages, then serves on port 8080 until stopped"],
  ["npm test", "the whole suite, this test included"],
  [
    "JWT_ISSUER_URL=https://your-tenant.eu.auth0.com/ JWT_AUDIENCE=notes-api npm start",
    "needs a real identity provider, and serves until stopped",
  ],
  // docs/replicas.md, two demos sharing a Redis: test/e2e/demo-revoke.test.ts
  // runs these as written, with a redis-server of its own.
  [
    "REDIS_URL=redis://127.0.0.1:6379 npm start",
    "serves until stopped, with a Redis at 127.0.0.1:6379 (run by demo-revoke.test.ts)",
  ],
  [
    "REDIS_URL=redis://127.0.0.1:6379 PORT=8081 JWT_JWKS_URL=http://127.0.0.1:8080/.well-known/jwks.json JWT_ISSUER=http://127.0.0.1:8080 JWT_AUDIENCE=connect-jwt-demo npm start",
    "the second demo sharing that Redis; serves until stopped (run by demo-revoke.test.ts)",
  ],
  [
    'npx buf curl --schema proto --protocol grpc --http2-prior-knowledge -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8081/demo.v1.DemoService/WhoAmI',
    "calls the second demo, on port 8081 (run by demo-revoke.test.ts)",
  ],
  [
    `curl -s -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" -d '{}' http://127.0.0.1:8081/demo.v1.DemoService/WhoAmI`,
    "calls the second demo, on port 8081 (run by demo-revoke.test.ts)",
  ],
]);

/** The address the docs use for the demo, rewritten to the demo this test starts. */
const docsAddress = "127.0.0.1:8080";

interface ShellBlock {
  /** Where it is, e.g. `README.md:447`. */
  readonly where: string;
  /** The commands to run, in order (continuation lines joined). */
  readonly commands: readonly string[];
  /** Commands of {@link notRunHere} the block holds. */
  readonly skipped: readonly string[];
}

/** A command without its trailing comment, as {@link notRunHere} names it. */
function withoutComment(command: string): string {
  return command.replace(/\s+#\s.*$/, "").trim();
}

/** The ```sh (or bash, shell) blocks of a Markdown file. */
function shellBlocks(file: string, markdown: string): ShellBlock[] {
  return [...markdown.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```/gm)].map((match) => {
    const line = markdown.slice(0, match.index).split("\n").length + 1;
    const lines = (match[1] ?? "").replace(/\\\n/g, " ").split("\n");
    const commands = lines.filter((l) => l.trim() !== "" && !l.trim().startsWith("#"));
    return {
      where: `${file}:${line}`,
      commands: commands.filter((c) => !notRunHere.has(withoutComment(c))),
      skipped: commands.filter((c) => notRunHere.has(withoutComment(c))).map(withoutComment),
    };
  });
}

const docs = ["README.md", "CONTRIBUTING.md"];
for await (const file of glob("docs/**/*.md", { cwd: root })) {
  docs.push(file);
}
const blocks: ShellBlock[] = [];
for (const file of docs.sort()) {
  blocks.push(...shellBlocks(file, await readFile(join(root, file), "utf8")));
}

/** The environment of the commands: as a reader's shell, with the project's tools on PATH. */
function shellEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of [
    "HOST",
    "PORT",
    "TOKEN",
    "CORS_ORIGINS",
    "REDIS_URL",
    ...externalIssuerVariables,
  ]) {
    delete env[name];
  }
  // `npx buf` finds the buf of node_modules/.bin without the network.
  env.PATH = [join(root, "node_modules", ".bin"), env.PATH].join(delimiter);
  return env;
}

interface ScriptRun {
  readonly code: number;
  /** The standard output of each command that ran to its end, in order. */
  readonly outputs: readonly string[];
  readonly stderr: string;
}

/**
 * runScript runs the commands as one bash script from the repository root
 * (where buf finds `proto/`), with `set -euo pipefail`: a variable one command
 * sets is seen by the next, and the first command that fails stops it. A
 * marker after each command splits the output by command.
 */
function runScript(commands: readonly string[]): Promise<ScriptRun> {
  const marker = `--- ${randomUUID()} ---`;
  const script = [
    "set -euo pipefail",
    ...commands.flatMap((command) => [command, `printf '\\n%s\\n' '${marker}'`]),
  ].join("\n");
  return new Promise((resolve) => {
    execFile(
      "bash",
      ["-c", script],
      { cwd: root, env: shellEnv(), timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
        const parts = stdout.split(`\n${marker}\n`);
        // The part after the last marker belongs to a command that did not end well.
        resolve({ code, outputs: parts.slice(0, -1), stderr });
      },
    );
  });
}

/**
 * checkRun asserts that every command exited 0, and that every `buf curl`
 * with a bearer token printed the subject (as `subject`, or a note's `owner`):
 * the `sub` the commands before it asked a token for, else `subject`, else any.
 */
function checkRun(where: string, commands: readonly string[], run: ScriptRun, subject?: string) {
  const failed = commands[run.outputs.length];
  assert.equal(
    run.code,
    0,
    // The end of stderr: buf puts its error after the whole usage text.
    `${where}: exit ${run.code} from: ${failed}\n${run.stderr.slice(-1500)}`,
  );
  assert.equal(run.outputs.length, commands.length);
  for (const [i, command] of commands.entries()) {
    if (!/\bbuf curl\b/.test(command) || !/Authorization: Bearer/i.test(command)) {
      continue;
    }
    const asked = commands
      .slice(0, i)
      .flatMap((c) => [...c.matchAll(/"sub"\s*:\s*"([^"]+)"/g)].map((m) => m[1]))
      .at(-1);
    const expected = asked ?? subject;
    const printed = [...(run.outputs[i] ?? "").matchAll(/"(?:subject|owner)": "([^"]+)"/g)];
    assert.ok(
      printed.length > 0 && printed.every((m) => expected === undefined || m[1] === expected),
      `${where}: ${command}\nprinted: ${run.outputs[i]}\nexpected the subject ${expected ?? ""}`,
    );
  }
}

/** A demo server started as `npm start` starts it, on a free port. */
interface RunningDemo {
  readonly url: string;
  /** What it printed at start. */
  readonly banner: string;
  stop(): Promise<void>;
}

async function startDemo(args: string[] = []): Promise<RunningDemo> {
  const child: ChildProcess = spawn(process.execPath, [tsx, "example/server.ts", ...args], {
    cwd: root,
    env: { ...shellEnv(), PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stdout = "";
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  // The banner ends with the token-minting command.
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (/\/demo\/token\n/.test(stdout)) {
        resolve();
      }
    });
    exited.then(() => reject(new Error(`the demo exited: ${stdout}${stderr}`)));
  });
  const stop = async () => {
    child.kill("SIGTERM");
    await exited;
  };
  const url = /listening on (https?:\/\/127\.0\.0\.1:\d+)$/m.exec(stdout)?.[1];
  if (url === undefined) {
    await stop();
    assert.fail(`no address in the banner: ${stdout}`);
  }
  return { url, banner: stdout, stop };
}

describe("shell commands of the README and docs/*.md, against the demo", () => {
  let cleartext: RunningDemo;
  let tls: RunningDemo;
  const running: RunningDemo[] = [];
  before(async () => {
    const started = await Promise.allSettled([startDemo(), startDemo(["--tls"])]);
    for (const result of started) {
      if (result.status === "fulfilled") {
        running.push(result.value);
      }
    }
    for (const result of started) {
      if (result.status === "rejected") {
        throw result.reason;
      }
    }
    [cleartext, tls] = running as [RunningDemo, RunningDemo];
  });
  after(() => Promise.all(running.map((demo) => demo.stop())));

  /** The commands with the docs' address pointed at the running demos. */
  function pointed(commands: readonly string[]): string[] {
    return commands.map((command) =>
      command
        .replaceAll(`https://${docsAddress}`, tls.url)
        .replaceAll(`http://${docsAddress}`, cleartext.url),
    );
  }

  it("finds the README's commands, and every command left out is still in the docs", () => {
    const run = blocks.flatMap((block) => block.commands);
    assert.ok(run.filter((c) => /\bbuf curl\b/.test(c)).length >= 3, "the buf curl lines");
    assert.ok(
      run.some((c) => c.includes("/demo/token")),
      "the token command",
    );
    const skipped = new Set(blocks.flatMap((block) => block.skipped));
    for (const command of notRunHere.keys()) {
      assert.ok(
        skipped.has(command),
        `not in the docs any more, drop it from notRunHere: ${command}`,
      );
    }
  });

  for (const block of blocks.filter((b) => b.commands.length > 0)) {
    it(`${block.where}: every command exits 0, and buf curl prints the subject`, async () => {
      const commands = pointed(block.commands);
      for (const command of commands) {
        assert.ok(
          !command.includes(":8080"),
          `${block.where}: use http://${docsAddress} (or https://) for the demo: ${command}`,
        );
      }
      checkRun(block.where, commands, await runScript(commands));
    });
  }

  for (const mode of ["cleartext", "--tls"] as const) {
    it(`${mode}: the commands the demo prints at start run as printed`, async () => {
      const demo = mode === "cleartext" ? cleartext : tls;
      const commands = demo.banner
        .split("\n")
        .filter((line) => /^(export TOKEN=|npx |curl )/.test(line));
      assert.ok(commands.filter((c) => c.startsWith("npx buf curl ")).length >= 5, demo.banner);
      const run = await runScript(commands);
      checkRun(`the ${mode} banner`, commands, run, sampleTokenRequest.sub);
      const mint = commands.findIndex((c) => c.startsWith("curl "));
      const minted = JSON.parse(run.outputs[mint] ?? "") as { token?: unknown };
      assert.match(String(minted.token), /^ey[\w-]+\.[\w-]+\.[\w-]+$/);
    });
  }

  it("a token request without Content-Type gets 415, saying what to send", async () => {
    const url = `${cleartext.url}/demo/token`;
    const run = await runScript([`curl -s -X POST -d '{"sub":"alice"}' ${url}`]);
    assert.equal(run.code, 0, run.stderr);
    const { error } = JSON.parse(run.outputs[0] ?? "") as { error: string };
    assert.match(error, /Content-Type: application\/json/);
  });
});
