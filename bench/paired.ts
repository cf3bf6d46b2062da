// `npm run bench:paired`: a few servers kept running side by side and loaded
// in turn, the order rotated every round, for differences of a few percent
// that the full benchmark (a fresh server per round and case) cannot place.
// h2load, Connect protocol, 8 h2load processes, each with its own token (a
// warm one, or a refused one of one kind); a first round warms every server,
// unmeasured. Prints each case's server CPU per request and req/s, its
// per-round ratio to the first case, and the bars: connect-jwt's cache hit
// against `map-gate` (the least a gate that authenticates can do) and against
// itself with revocations shared through Redis (a redis-server of the run's
// own), and each of its refusals against `refuse-gate` (a refusal that reads
// nothing). A full run writes RESULTS.md's "paired" section.
//
//   npm run bench:paired                                   the bars, 10 rounds of 3 s
//   npm run bench:paired -- --cases none,none,map-gate,connect-jwt --rounds 16
//   npm run bench:paired -- --quick                        a smoke run (short loads)
//   npm run bench:paired -- --cases connect-jwt,connect-jwt-otel,connect-jwt:expired,connect-jwt-otel:expired
//                                                          telemetry on against off
//   npm run bench:paired -- --cases none,jose,connect-jwt-dpop:dpop,connect-jwt-dpop:dpop-refused
//                                                          DPoP against jose and no authentication
//   npm run bench:paired -- --cases none,none:dpop-refused,jose,jose:dpop,connect-jwt-dpop:dpop,connect-jwt-dpop:dpop-refused
//                                                          the same, and against baselines sent DPoP's bytes
//   npm run bench:paired -- --cases connect-jwt,connect-jwt-revocations
//                                                          revocations (redisRevocations) on against off
//
// A case is `server` or `server:tokens`, tokens `warm` (the default), a
// refusal kind (`expired`, `malformed`, ...), or `dpop` (bound tokens and
// their proofs) and `dpop-refused` (proofs for GET, which `connect-jwt-dpop`
// refuses before their signature; `none` and `jose` ignore the proofs, jose
// getting the token as Bearer). A server process carries an
// offset of its own of a few percent: list the same case twice to see it.
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { boundToken, dpopClient, proof } from "./dpop.js";
import { runH2load } from "./h2load.js";
import { type Alg, algorithms, methodPath, readKey, signer } from "./keys.js";
import { type RefusalKind, refusalKinds } from "./plan.js";
import { ensurePool } from "./pools.js";
import { pinning, type RunningServer, startServer } from "./processes.js";
import { type RunningRedis, startRedis } from "./redis.js";
import { refusedAuthorizations } from "./refusals.js";
import { runLine, writeSection } from "./results-file.js";
import type { AuthKind } from "./server.js";
import { formatSpread, type Spread, spread } from "./stats.js";

const refusalCases = ["expired", "wrong-issuer", "wrong-audience", "wrong-algorithm", "malformed"];
const defaultCases = [
  "none",
  "map-gate",
  "connect-jwt",
  "connect-jwt-revocations",
  "refuse-gate",
  ...refusalCases.map((kind) => `connect-jwt:${kind}`),
].join(",");
const { values } = parseArgs({
  options: {
    cases: { type: "string" },
    alg: { type: "string", default: "ES256" },
    rounds: { type: "string" },
    seconds: { type: "string" },
    quick: { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
  },
});
const quick = values.quick === true;
const list =
  values.cases ??
  (quick
    ? "none,connect-jwt,connect-jwt-revocations,refuse-gate,connect-jwt:expired"
    : defaultCases);
const alg = values.alg as Alg;
const rounds = Number(values.rounds ?? (quick ? 1 : 10));
const seconds = Number(values.seconds ?? (quick ? 0.3 : 3));
if (!algorithms.includes(alg) || !(rounds >= 1) || !(seconds > 0)) {
  throw new Error(
    `bench:paired: --alg one of ${algorithms.join(", ")}, --rounds ≥ 1, --seconds > 0`,
  );
}
const write = !quick && !values["no-write"] && values.cases === undefined && alg === "ES256";
const processes = 8;

const dpopTokens = ["dpop", "dpop-refused"] as const;

interface Case {
  readonly name: string;
  readonly auth: AuthKind;
  readonly tokens: "warm" | RefusalKind | (typeof dpopTokens)[number];
  readonly expect: "ok" | "refused";
}

const cases: Case[] = list.split(",").map((spec, i, all) => {
  const [auth = "", tokens = "warm"] = spec.split(":");
  const kinds: readonly string[] = ["warm", ...refusalKinds, ...dpopTokens];
  if (!kinds.includes(tokens)) {
    throw new Error(`bench:paired: ${spec}: tokens are one of ${kinds.join(", ")}`);
  }
  // `none` answers whatever it gets; `none:dpop` and `jose:dpop` receive the
  // DPoP case's bytes and ignore the proof (jose gets the bound token as Bearer).
  const expect =
    auth !== "none" && (auth === "refuse-gate" || (tokens !== "warm" && tokens !== "dpop"))
      ? "refused"
      : "ok";
  // The same case twice gets a number, so that its two servers stay apart.
  const name = all.indexOf(spec) === i ? spec : `${spec}#${i + 1}`;
  return { name, auth: auth as AuthKind, tokens: tokens as Case["tokens"], expect };
});

const started = new Date();
const loadBefore = loadavg();
const warm = (await ensurePool(alg, "warm", processes)).tokens.slice(0, processes);
// DPoP: one client key, a bound token and a proof per process.
const client = dpopClient();
const bound = Array.from({ length: processes }, (_, i) =>
  boundToken(signer(readKey(alg)), client, i),
);
const authorizations = ({ auth, tokens }: Case) =>
  tokens === "warm"
    ? warm.map((t) => `Bearer ${t}`)
    : tokens === "dpop" || tokens === "dpop-refused"
      ? bound.map((t) => `${auth === "jose" ? "Bearer" : "DPoP"} ${t}`)
      : refusedAuthorizations(tokens, alg, warm, processes);
const extraHeaders = (tokens: Case["tokens"]) =>
  tokens === "dpop" || tokens === "dpop-refused"
    ? bound.map((t, i) => ({ dpop: proof(client, t, i, tokens === "dpop" ? "POST" : "GET") }))
    : undefined;

const servers: RunningServer[] = [];
const cpu = cases.map((): number[] => []);
const rps = cases.map((): number[] => []);
// The servers with revocations share one redis-server of the run's own.
let redis: RunningRedis | undefined;
try {
  if (cases.some((c) => c.auth === "connect-jwt-revocations")) {
    redis = await startRedis();
  }
  for (const c of cases) {
    const shared = redis === undefined ? {} : { redisPort: redis.port };
    servers.push(await startServer({ impl: "connect", auth: c.auth, alg, ...shared }));
  }
  for (let round = 0; round <= rounds; round++) {
    for (let j = 0; j < cases.length; j++) {
      const i = (j + round) % cases.length;
      const c = cases[i] as Case;
      const server = servers[i] as RunningServer;
      const before = await server.stats();
      const load = await runH2load(
        {
          url: server.url,
          protocol: "connect",
          authorizations: authorizations(c),
          extraHeaders: extraHeaders(c.tokens),
          streams: 8,
          warmupSeconds: 0,
          seconds,
          pin: pinning.load,
        },
        methodPath,
      );
      const after = await server.stats();
      const expected = c.expect === "ok" ? load.status2xx : load.status4xx;
      if (load.errors !== 0 || expected === 0 || expected + 64 < load.requests) {
        throw new Error(
          `${c.name}: expected ${c.expect}; ${load.status2xx} answered, ${load.status4xx} refused, ${load.errors} errors`,
        );
      }
      if (round > 0) {
        cpu[i]?.push((after.cpuMicros - before.cpuMicros) / (after.requests - before.requests));
        rps[i]?.push(load.reqPerSec);
      }
    }
  }
} finally {
  await Promise.all(servers.map((s) => s.stop()));
  await redis?.stop();
}

/** Per round: the base's server CPU per request ÷ the case's (a throughput ratio), and req/s ÷ req/s. */
function versus(i: number, base: number): { byCpu: Spread; byRps: Spread } {
  const ratios = (
    mine: readonly number[],
    theirs: readonly number[],
    f: (a: number, b: number) => number,
  ) => spread(mine.map((v, r) => f(v, theirs[r] ?? Number.NaN)));
  return {
    byCpu: ratios(cpu[i] ?? [], cpu[base] ?? [], (a, b) => b / a),
    byRps: ratios(rps[i] ?? [], rps[base] ?? [], (a, b) => a / b),
  };
}

const out = [
  "## Servers side by side (`npm run bench:paired`)",
  "",
  `Generated by paired.ts: ${alg} tokens, h2load, Connect protocol, ${processes} processes × 8 streams, ${rounds} rounds of ${seconds} s, servers kept running. ${runLine(started, loadBefore)}`,
  "",
  `| case | server CPU µs per request | req/s | vs ${cases[0]?.name}, by server CPU | vs ${cases[0]?.name}, req/s |`,
  "|---|---:|---:|---:|---:|",
];
cases.forEach((c, i) => {
  const v = versus(i, 0);
  out.push(
    `| ${c.name} | ${formatSpread(spread(cpu[i] ?? []), 1)} | ${formatSpread(spread(rps[i] ?? []))} | ${i === 0 ? "1" : formatSpread(v.byCpu, 3)} | ${i === 0 ? "1" : formatSpread(v.byRps, 3)} |`,
  );
});
/**
 * The bars a run can show: a name, the case and its base, and the least ratio
 * that meets it. A bar is shown when the run has both of its cases. The DPoP
 * bars come twice: against baselines sent the usual tokens, and against
 * baselines that receive the DPoP case's bytes (the proof header too) and
 * ignore what they do not check, as the other bars' baselines receive the same
 * tokens: only the checking differs.
 */
const possibleBars: (readonly [string, string, string, number])[] = [
  ["cache hit ≥ 0.95 × map-gate", "connect-jwt", "map-gate", 0.95],
  ["DPoP, a cached token ≥ 1.0 × jose", "connect-jwt-dpop:dpop", "jose", 1],
  [
    "DPoP, a proof refused before its signature ≥ 0.9 × none",
    "connect-jwt-dpop:dpop-refused",
    "none",
    0.9,
  ],
  ["DPoP, a cached token ≥ 1.0 × jose, same bytes", "connect-jwt-dpop:dpop", "jose:dpop", 1],
  [
    "DPoP, a proof refused before its signature ≥ 0.9 × none, same bytes",
    "connect-jwt-dpop:dpop-refused",
    "none:dpop-refused",
    0.9,
  ],
  ["cache hit, telemetry on ≥ 0.95 × off", "connect-jwt-otel", "connect-jwt", 0.95],
  ["cache hit, revocations on ≥ 0.95 × off", "connect-jwt-revocations", "connect-jwt", 0.95],
  ...refusalKinds.flatMap((kind) => [
    [
      `refusal, ${kind}, telemetry on ≥ 0.95 × off`,
      `connect-jwt-otel:${kind}`,
      `connect-jwt:${kind}`,
      0.95,
    ] as const,
    [`refusal, ${kind} ≥ 0.95 × refuse-gate`, `connect-jwt:${kind}`, "refuse-gate", 0.95] as const,
  ]),
];
const index = (name: string) => cases.findIndex((c) => c.name === name);
const bars = possibleBars
  .map(([what, name, base, least]) => [what, index(name), index(base), least] as const)
  .filter(([, i, base]) => i >= 0 && base >= 0);
if (bars.length > 0) {
  out.push(
    "",
    "| bar | by server CPU: median (min–max) | verdict | req/s: median (min–max) |",
    "|---|---:|---|---:|",
  );
  for (const [what, i, base, least] of bars) {
    const v = versus(i, base);
    const verdict =
      v.byCpu.median >= least
        ? v.byCpu.min >= least
          ? "holds"
          : "holds on the median"
        : "**missed**";
    out.push(
      `| ${what} | ${formatSpread(v.byCpu, 3)} | ${verdict} | ${formatSpread(v.byRps, 3)} |`,
    );
  }
}
console.log(out.join("\n"));
if (write) {
  writeSection("paired", out.join("\n"));
}
