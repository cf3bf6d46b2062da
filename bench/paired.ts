// `npm run bench:paired`: a few servers kept running side by side and loaded in
// turn, the order rotated every round, for differences of a few percent that
// the full benchmark (a fresh server per round and case) cannot place: what a
// hook or a step costs a server, beside a diagnostic server that does part of
// the work. h2load, Connect protocol, the same warm tokens for every server
// (one per h2load process); a first round warms every server, unmeasured.
// Prints each server's CPU per request and req/s, and the median of its
// per-round ratio to the first server's CPU per request.
//
//   npm run bench:paired -- --auth none,map-gate,connect-jwt-gate --rounds 16
//   npm run bench:paired -- --quick      a smoke run (two servers, short loads)
//
// A server process carries an offset of its own of a few percent: list the
// same configuration twice (`--auth none,none,…`) to see it.
import { parseArgs } from "node:util";
import { runH2load } from "./h2load.js";
import { type Alg, algorithms, methodPath } from "./keys.js";
import { ensurePool } from "./pools.js";
import { pinning, type RunningServer, startServer } from "./processes.js";
import type { AuthKind } from "./server.js";
import { formatSpread, spread } from "./stats.js";

const { values } = parseArgs({
  options: {
    auth: { type: "string", default: "none,map-gate,connect-jwt" },
    alg: { type: "string", default: "ES256" },
    rounds: { type: "string" },
    seconds: { type: "string" },
    tokens: { type: "string", default: "8" },
    quick: { type: "boolean", default: false },
  },
});
const quick = values.quick === true;
const kinds = (quick ? "none,connect-jwt" : values.auth).split(",") as AuthKind[];
const alg = values.alg as Alg;
const rounds = Number(values.rounds ?? (quick ? 1 : 12));
const seconds = Number(values.seconds ?? (quick ? 0.3 : 3));
const tokens = Number(values.tokens);
if (!algorithms.includes(alg) || !(rounds >= 1) || !(seconds > 0) || !(tokens >= 1)) {
  throw new Error(
    `bench:paired: --alg one of ${algorithms.join(", ")}, --rounds ≥ 1, --seconds > 0, --tokens ≥ 1`,
  );
}
// The same configuration twice gets a number, so that its two servers stay apart.
const names = kinds.map((k, i) => (kinds.indexOf(k) === i ? k : `${k}#${i + 1}`));

const pool = await ensurePool(alg, "warm", tokens);
const authorizations = pool.tokens.slice(0, tokens).map((t) => `Bearer ${t}`);
const servers: RunningServer[] = [];
try {
  for (const auth of kinds) {
    servers.push(await startServer({ impl: "connect", auth, alg }));
  }
  const cpu = names.map((): number[] => []);
  const rps = names.map((): number[] => []);
  for (let round = 0; round <= rounds; round++) {
    for (let j = 0; j < servers.length; j++) {
      const i = (j + round) % servers.length;
      const server = servers[i] as RunningServer;
      const before = await server.stats();
      const load = await runH2load(
        {
          url: server.url,
          protocol: "connect",
          authorizations,
          streams: 8,
          warmupSeconds: 0,
          seconds,
          pin: pinning.load,
        },
        methodPath,
      );
      const after = await server.stats();
      if (load.status4xx !== 0 || load.errors !== 0 || load.status2xx === 0) {
        throw new Error(
          `${names[i]}: ${load.status2xx} answered, ${load.status4xx} refused, ${load.errors} errors`,
        );
      }
      if (round > 0) {
        cpu[i]?.push((after.cpuMicros - before.cpuMicros) / (after.requests - before.requests));
        rps[i]?.push(load.reqPerSec);
      }
    }
  }
  const base = cpu[0] ?? [];
  console.log(
    `${alg}, h2load Connect, ${tokens} tokens, ${rounds} rounds of ${seconds} s, servers kept running`,
  );
  console.log("| server | CPU µs per request | req/s | CPU per request ÷ the first, per round |");
  console.log("|---|---:|---:|---:|");
  names.forEach((name, i) => {
    const mine = cpu[i] ?? [];
    const ratios = mine.map((x, r) => x / (base[r] ?? Number.NaN));
    console.log(
      `| ${name} | ${formatSpread(spread(mine), 1)} | ${formatSpread(spread(rps[i] ?? []))} | ${i === 0 ? "1" : formatSpread(spread(ratios), 3)} |`,
    );
  });
} finally {
  await Promise.all(servers.map((s) => s.stop()));
}
