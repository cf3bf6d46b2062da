// `npm run bench:edge`: connect-jwt on Bun and on Deno, against the same
// runtime without authentication. Each runtime runs four servers of
// edge-server.ts (bundled by Bun's bundler for a browser-like platform, as a
// deploy would): connect-jwt, no authentication, and the two floors of Node's
// paired benchmark, map-gate (the least a gate that authenticates does) and
// refuse-gate (a refusal that reads nothing). They are kept running side by
// side and loaded in turn, the order rotated every round; a first round warms
// every server, unmeasured. h2load over HTTP/1.1 (Bun and Deno serve fetch
// handlers over cleartext HTTP/1.1), Connect protocol, 8 processes of one
// connection each, each with its own ES256 token. The cases: no
// authentication (the token sent and ignored), map-gate and connect-jwt with
// a valid token (a cache hit), refuse-gate and connect-jwt with an expired
// token. The bars, as on Node.js: a cache hit ≥ 0.95 × no authentication, a
// refusal ≥ 0.90; beside them, connect-jwt against the floors (≥ 0.95 each),
// which tell its own cost from what any authentication costs on the runtime.
// A full run writes RESULTS.md's "edge" section.
//
//   npm run bench:edge                      8 rounds of 3 s
//   npm run bench:edge -- --rounds 4        fewer rounds
//   npm run bench:edge -- --quick           a smoke run (short loads)
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { run, runH2load } from "./h2load.js";
import { audience, issuer, methodPath, readKey } from "./keys.js";
import { ensurePool } from "./pools.js";
import { benchDir, pinning, repoDir } from "./processes.js";
import { refusedAuthorizations } from "./refusals.js";
import { runLine, writeSection } from "./results-file.js";
import { formatSpread, type Spread, spread } from "./stats.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string" },
    seconds: { type: "string" },
    quick: { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
  },
});
const quick = values.quick === true;
const rounds = Number(values.rounds ?? (quick ? 1 : 8));
const seconds = Number(values.seconds ?? (quick ? 0.3 : 3));
if (!(rounds >= 1) || !(seconds > 0)) {
  throw new Error("bench:edge: --rounds ≥ 1, --seconds > 0");
}
const write = !quick && !values["no-write"];
const alg = "ES256";
const processes = 8;

const runtimes = [
  { name: "Bun", binary: "bun", args: (file: string) => ["run", file] },
  {
    name: "Deno",
    binary: "deno",
    args: (file: string) => ["run", "--allow-net=127.0.0.1", "--allow-env", file],
  },
] as const;
type RuntimeName = (typeof runtimes)[number]["name"];

interface Case {
  readonly name: string;
  readonly auth: "none" | "map-gate" | "connect-jwt" | "refuse-gate";
  readonly tokens: "warm" | "expired";
}
const cases: readonly Case[] = [
  { name: "no authentication", auth: "none", tokens: "warm" },
  { name: "map-gate", auth: "map-gate", tokens: "warm" },
  { name: "connect-jwt, cache hit", auth: "connect-jwt", tokens: "warm" },
  { name: "refuse-gate", auth: "refuse-gate", tokens: "expired" },
  { name: "connect-jwt, refusal (expired)", auth: "connect-jwt", tokens: "expired" },
];
const [none, mapGate, cacheHit, refuseGate, refusal] = cases as [Case, Case, Case, Case, Case];
/** The bars: a case, its baseline, the ratio it must reach. */
const bars: readonly (readonly [Case, Case, number])[] = [
  [cacheHit, none, 0.95],
  [refusal, none, 0.9],
  [cacheHit, mapGate, 0.95],
  [refusal, refuseGate, 0.95],
];

const binaryOf = (name: string) => join(repoDir, "node_modules", ".bin", name);
const clockTicks = Number(spawnSync("getconf", ["CLK_TCK"]).stdout?.toString().trim() || 100);

/** The CPU time of a process so far, in microseconds (Linux: /proc/<pid>/stat). */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) / clockTicks) * 1e6;
}

interface EdgeServer {
  readonly url: string;
  readonly child: ChildProcess;
}

async function startEdgeServer(
  runtime: (typeof runtimes)[number],
  file: string,
  auth: Case["auth"],
): Promise<EdgeServer> {
  const [command = "", ...prefix] = [...pinning.server, binaryOf(runtime.binary)];
  const child = spawn(command, [...prefix, ...runtime.args(file)], {
    cwd: benchDir,
    stdio: ["ignore", "pipe", "ignore"],
    env: {
      ...process.env,
      EDGE_AUTH: auth,
      JWT_PUBLIC_KEY: readKey(alg).publicPem ?? "",
      JWT_ALGORITHM: alg,
      JWT_ISSUER: issuer,
      JWT_AUDIENCE: audience,
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /LISTENING (\d+)/.exec(out);
      if (match !== null) {
        resolve(Number(match[1]));
      }
    });
    child.once("exit", (code) => reject(new Error(`${runtime.name} server exited: ${code}`)));
    child.once("error", reject);
  });
  child.removeAllListeners("exit");
  return { url: `http://127.0.0.1:${port}`, child };
}

const started = new Date();
const loadBefore = loadavg();
const warm = (await ensurePool(alg, "warm", processes)).tokens.slice(0, processes);
const authorizations = (tokens: Case["tokens"]) =>
  tokens === "warm"
    ? warm.map((t) => `Bearer ${t}`)
    : refusedAuthorizations("expired", alg, warm, processes);

const work = mkdtempSync(join(tmpdir(), "connect-jwt-edge-bench-"));
const bundle = join(work, "edge-server.js");
const versions: string[] = [];
const servers = new Map<string, EdgeServer>();
const cpu = new Map<string, number[]>();
const rps = new Map<string, number[]>();
const key = (runtime: RuntimeName, c: Case) => `${runtime}: ${c.name}`;
try {
  await run([
    binaryOf("bun"),
    "build",
    join(benchDir, "edge-server.ts"),
    "--target",
    "browser",
    "--format",
    "esm",
    "--outfile",
    bundle,
  ]);
  for (const runtime of runtimes) {
    versions.push(
      `${runtime.name} ${(await run([binaryOf(runtime.binary), "--version"])).split("\n")[0]?.trim()}`,
    );
    for (const auth of new Set(cases.map((c) => c.auth))) {
      servers.set(`${runtime.name}/${auth}`, await startEdgeServer(runtime, bundle, auth));
    }
  }
  for (let round = 0; round <= rounds; round++) {
    for (const runtime of runtimes) {
      for (let j = 0; j < cases.length; j++) {
        const c = cases[(j + round) % cases.length] as Case;
        const server = servers.get(`${runtime.name}/${c.auth}`) as EdgeServer;
        const pid = server.child.pid as number;
        const before = cpuMicros(pid);
        const load = await runH2load(
          {
            url: server.url,
            protocol: "connect",
            authorizations: authorizations(c.tokens),
            streams: 1,
            h1: true,
            warmupSeconds: 0,
            seconds,
            pin: pinning.load,
          },
          methodPath,
        );
        const after = cpuMicros(pid);
        const expected = c.tokens === "warm" ? load.status2xx : load.status4xx;
        if (load.errors !== 0 || expected === 0 || expected + processes < load.requests) {
          throw new Error(
            `${key(runtime.name, c)}: ${load.status2xx} answered, ${load.status4xx} refused, ${load.errors} errors`,
          );
        }
        if (round > 0) {
          const k = key(runtime.name, c);
          cpu.set(k, [...(cpu.get(k) ?? []), (after - before) / load.requests]);
          rps.set(k, [...(rps.get(k) ?? []), load.reqPerSec]);
        }
      }
    }
  }
} finally {
  for (const server of servers.values()) {
    server.child.kill("SIGTERM");
  }
  rmSync(work, { recursive: true, force: true });
}

/** Per round: the base's server CPU per request ÷ the case's (a throughput ratio), and req/s ÷ req/s. */
function versus(mine: string, base: string): { byCpu: Spread; byRps: Spread } {
  const ratios = (m: number[], b: number[], f: (a: number, b: number) => number) =>
    spread(m.map((v, r) => f(v, b[r] ?? Number.NaN)));
  return {
    byCpu: ratios(cpu.get(mine) ?? [], cpu.get(base) ?? [], (a, b) => b / a),
    byRps: ratios(rps.get(mine) ?? [], rps.get(base) ?? [], (a, b) => a / b),
  };
}

const out = [
  "## Bun and Deno (`npm run bench:edge`)",
  "",
  `Generated by edge.ts: ${alg} tokens, h2load over HTTP/1.1, Connect protocol, ${processes} processes × 1 connection, ${rounds} rounds of ${seconds} s, servers kept running (${pinning.note}); ${versions.join(", ")}. ${runLine(started, loadBefore)}`,
  "",
  "Each runtime serves WhoAmI through Connect's fetch handler (`createFetchHandler`), bundled by",
  "Bun for a browser-like platform: with connect-jwt (interceptor and request gate, defaults),",
  "without authentication, or behind one of the floors: `map-gate`, a gate that reads the header,",
  "finds the token in a `Map` and records claims for the handler (the least a gate that",
  "authenticates does), and `refuse-gate`, a gate that refuses every call without reading",
  "anything. Ratios are taken within a runtime, round by round; the two runtimes are never",
  "compared with each other.",
  "",
  "| runtime | case | server CPU µs per request | req/s | vs no auth, by server CPU | vs no auth, req/s |",
  "|---|---|---:|---:|---:|---:|",
];
for (const runtime of runtimes) {
  const base = key(runtime.name, none);
  for (const c of cases) {
    const k = key(runtime.name, c);
    const v = versus(k, base);
    const first = k === base;
    out.push(
      `| ${runtime.name} | ${c.name} | ${formatSpread(spread(cpu.get(k) ?? []), 1)} | ${formatSpread(spread(rps.get(k) ?? []))} | ${first ? "1" : formatSpread(v.byCpu, 3)} | ${first ? "1" : formatSpread(v.byRps, 3)} |`,
    );
  }
}
out.push(
  "",
  "| runtime | bar | by server CPU: median (min–max) | verdict | req/s: median (min–max) |",
  "|---|---|---:|---|---:|",
);
for (const runtime of runtimes) {
  for (const [c, base, bar] of bars) {
    const v = versus(key(runtime.name, c), key(runtime.name, base));
    const verdict =
      v.byCpu.median >= bar ? (v.byCpu.min >= bar ? "holds" : "holds on the median") : "**missed**";
    const baseName = base === none ? "no auth" : base.name;
    out.push(
      `| ${runtime.name} | ${c.name} ≥ ${bar.toFixed(2)} × ${baseName} | ${formatSpread(v.byCpu, 3)} | ${verdict} | ${formatSpread(v.byRps, 3)} |`,
    );
  }
}
console.log(out.join("\n"));
if (write) {
  writeSection("edge", out.join("\n"));
}
