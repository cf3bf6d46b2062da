// `npm run bench`: what connect-jwt costs a Connect server, measured against no
// authentication, a hand-written jose interceptor, and @grpc/grpc-js with a
// jose interceptor; refusals; the request gate; the cache's memory. Prints the
// tables and, for a full run, writes them to RESULTS.md (its "servers"
// section), and runs micro.ts, which writes its own.
//
//   npm run bench                 the full run (about an hour)
//   npm run bench -- --quick      a smoke run: one round, short loads, ES256 only
//   npm run bench -- --rounds 5 --seconds 5 --only connect-jwt,none --no-memory --no-micro
// (--only and --quick runs print the tables but leave RESULTS.md alone.)
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type LoadResult, protocolHeaders, runH2load } from "./h2load.js";
import { type Alg, algorithms, cacheDir, methodPath } from "./keys.js";
import type { MemoryResult } from "./memory.js";
import { type Outcome, watchOutcome } from "./outcome.js";
import { type Case, type Load, plan, type RefusalKind, refusalKinds } from "./plan.js";
import { ensurePool, type Pool, type PoolKind } from "./pools.js";
import { pinning, type RunningServer, runLoadgen, runNode, startServer } from "./processes.js";
import { refusedAuthorizations } from "./refusals.js";
import { type Machine, render, type Sample } from "./report.js";
import { resultsPath, writeSection } from "./results-file.js";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    rounds: { type: "string" },
    seconds: { type: "string" },
    warmup: { type: "string" },
    "server-warmup": { type: "string" },
    only: { type: "string" },
    "no-micro": { type: "boolean", default: false },
    "no-memory": { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
  },
});
const quick = values.quick === true;
const settings = {
  rounds: Number(values.rounds ?? (quick ? 1 : 3)),
  seconds: Number(values.seconds ?? (quick ? 0.3 : 3)),
  warmup: Number(values.warmup ?? (quick ? 0.1 : 1)),
  /**
   * Seconds of the case's first load that each new server gets, unmeasured,
   * before its first measured load: a fresh process needs a few seconds to
   * compile its hot code, and more code takes longer, which showed as a
   * first load up to 5 % slower than the next ones for connect-jwt.
   */
  serverWarmup: Number(values["server-warmup"] ?? (quick ? 0 : 2)),
  algs: (quick ? ["ES256"] : [...algorithms]) as Alg[],
  /** h2load processes (one connection each) × streams per connection. */
  h2loadProcesses: 8,
  streams: 8,
  warmTokens: 300,
  coldTokens: quick ? 12_000 : 60_000,
  memoryTokens: quick ? 20_000 : 1_000_000,
};
// Only a full run rewrites bench/RESULTS.md.
const write = !quick && !values["no-write"] && values.only === undefined;
const refusalAlg: Alg = "ES256";

const started = Date.now();
const log = (message: string) =>
  console.error(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}`);

// --- Tokens -----------------------------------------------------------------
log(`minting token pools (cached in ${cacheDir})`);
const pools: Record<PoolKind, Map<Alg, Pool>> = {
  warm: new Map(),
  cold: new Map(),
  expired: new Map(),
};
for (const alg of new Set([...settings.algs, refusalAlg])) {
  pools.warm.set(alg, await ensurePool(alg, "warm", settings.warmTokens));
  pools.cold.set(alg, await ensurePool(alg, "cold", settings.coldTokens));
  if (alg === refusalAlg) {
    pools.expired.set(alg, await ensurePool(alg, "expired", settings.coldTokens));
  }
}
const refusals = refusalTokens(refusalAlg);
const bodyFiles = writeBodies();

function refusalTokens(alg: Alg): Record<RefusalKind, string | undefined> {
  const valid = pools.warm.get(alg)?.tokens ?? [];
  return Object.fromEntries(
    refusalKinds.map((kind) => [kind, refusedAuthorizations(kind, alg, valid)[0]]),
  ) as Record<RefusalKind, string | undefined>;
}

function writeBodies() {
  // The gate loads: a 4 MiB WhoAmIRequest, all of it one unknown field
  // (number 15, length-delimited), which the server parses and ignores.
  const size = 4 * 1024 * 1024;
  const header = Buffer.from([0x7a, ...varint(size - 5)]);
  const mib4 = join(cacheDir, "body-4mib.bin");
  if (!existsSync(mib4)) {
    writeFileSync(mib4, Buffer.concat([header, Buffer.alloc(size - header.length, 0x61)]));
  }
  // gRPC: an empty message in its 5-byte envelope.
  const grpc = join(cacheDir, "body-grpc-empty.bin");
  writeFileSync(grpc, Buffer.alloc(5));
  return { mib4, grpc };
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

// --- Measuring ----------------------------------------------------------------
function authorizations(load: Load, count: number): (string | undefined)[] {
  const t = load.tokens;
  switch (t.kind) {
    case "none":
      return Array.from({ length: count }, () => undefined);
    case "fixed":
      return Array.from({ length: count }, () => t.value);
    case "warm":
      return (pools.warm.get(t.alg)?.tokens ?? []).slice(0, count).map((tok) => `Bearer ${tok}`);
    case "cold":
    case "expired":
      throw new Error(`${load.id}: h2load sends one header value per process; use loadgen`);
  }
}

/** One request before the load, to check the server answers as expected. */
async function probe(url: string, load: Load, authorization: string | undefined) {
  const session = http2.connect(url);
  try {
    const headers: http2.OutgoingHttpHeaders = {
      ...protocolHeaders(load.protocol),
      ":path": methodPath,
    };
    if (authorization !== undefined) {
      headers.authorization = authorization;
    }
    const body =
      load.body === "4mib"
        ? readFileSync(bodyFiles.mib4)
        : load.protocol === "grpc"
          ? Buffer.alloc(5)
          : Buffer.alloc(0);
    const outcome = await new Promise<Outcome>((resolve, reject) => {
      const stream = session.request(headers);
      const seen = watchOutcome(stream);
      stream.on("close", () => resolve(seen));
      stream.on("error", reject);
      stream.end(body);
    });
    const ok = load.protocol === "grpc" ? outcome.grpcStatus === "0" : outcome.status === 200;
    // PermissionDenied: HTTP 403 for the Connect protocol, grpc-status 7 for gRPC.
    const refused = load.protocol === "grpc" ? outcome.grpcStatus === "7" : outcome.status === 403;
    if (load.expect === "ok" ? !ok : !refused) {
      throw new Error(`${load.id}: expected ${load.expect}, got ${JSON.stringify(outcome)}`);
    }
  } finally {
    session.close();
  }
}

/**
 * Where the next loadgen run on the current server starts in each token
 * file: every server sees a pool's tokens in order, each at most once.
 */
const cursors = new Map<string, number>();

async function measure(
  load: Load,
  server: RunningServer,
  seconds = settings.seconds,
): Promise<Omit<Sample, "round" | "at">> {
  const big = load.body === "4mib";
  const processes = big ? 2 : settings.h2loadProcesses;
  const streams = big ? 2 : settings.streams;
  const t = load.tokens;
  // A pool's load is probed with its first token (a valid one for the cold pool,
  // whose tokens must stay new); a fixed token or none as the load sends it.
  const probeAuth =
    t.kind === "none" || t.kind === "fixed"
      ? authorizations(load, 1)[0]
      : `Bearer ${pools[t.kind === "expired" ? "expired" : "warm"].get(t.alg)?.tokens[0]}`;
  await probe(server.url, load, probeAuth);
  // The server's counters are read after the warm-up run and after the
  // measured run: CPU time and bytes per request cover the measured run only.
  let before = await server.stats();
  const measureFromHere = async () => {
    before = await server.stats();
  };
  let result: LoadResult;
  let unexpected: number;
  let tokensReused = false;
  if (load.generator === "h2load") {
    result = await runH2load(
      {
        url: server.url,
        protocol: load.protocol,
        authorizations: authorizations(load, processes),
        streams,
        warmupSeconds: settings.warmup,
        seconds,
        pin: pinning.load,
        ...(big
          ? { bodyFile: bodyFiles.mib4 }
          : load.protocol === "grpc"
            ? { bodyFile: bodyFiles.grpc }
            : {}),
      },
      methodPath,
      measureFromHere,
    );
    // gRPC answers 200 whether it refuses or not: there the probe is the check.
    unexpected =
      load.protocol === "grpc"
        ? result.errors
        : result.errors +
          (load.expect === "ok"
            ? result.requests - result.status2xx
            : result.requests - result.status4xx);
  } else {
    if (t.kind === "fixed") {
      throw new Error(`${load.id}: fixed tokens are for h2load`);
    }
    const tokensFile = t.kind === "none" ? undefined : pools[t.kind].get(t.alg)?.file;
    const options = {
      url: server.url,
      path: methodPath,
      protocol: load.protocol,
      ...(tokensFile === undefined ? {} : { tokensFile }),
      connections: settings.h2loadProcesses,
      streams: settings.streams,
      warmupSeconds: 0,
    };
    // Warm-up, then the measured run, which goes on where the warm-up's
    // tokens ended, as the next run on this server goes on where this one's
    // did (so that a cold load's tokens stay new to the server).
    const warm = await runLoadgen({
      ...options,
      seconds: settings.warmup,
      firstToken: tokensFile === undefined ? 0 : (cursors.get(tokensFile) ?? 0),
    });
    await measureFromHere();
    const r = await runLoadgen({
      ...options,
      seconds,
      firstToken: warm.nextToken,
    });
    if (tokensFile !== undefined) {
      cursors.set(tokensFile, r.nextToken);
    }
    result = {
      requests: r.requests,
      reqPerSec: r.reqPerSec,
      p50Ms: r.p50Ms,
      p99Ms: r.p99Ms,
      status2xx: r.ok,
      status4xx: r.refused,
      errors: r.errors,
    };
    unexpected = r.errors + (load.expect === "ok" ? r.refused : r.ok);
    tokensReused = (t.kind === "cold" || t.kind === "expired") && r.tokensReused;
  }
  const after = await server.stats();
  const served = Math.max(1, after.requests - before.requests);
  return {
    reqPerSec: result.reqPerSec,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    requests: result.requests,
    unexpected: Math.max(0, unexpected),
    cpuUsPerReq: (after.cpuMicros - before.cpuMicros) / served,
    bodyBytesPerReq: (after.bodyBytes - before.bodyBytes) / served,
    socketBytesPerReq: (after.socketBytes - before.socketBytes) / served,
    tokensReused,
  };
}

// --- The run -------------------------------------------------------------------
const only = values.only?.split(",").map((s) => s.trim());
const cases = plan({ algs: settings.algs, refusalAlg, refusals }).filter(
  (c) => only === undefined || only.some((prefix) => c.id.startsWith(prefix)),
);
const samples = new Map<string, Sample[]>();
const loadBefore = loadavg();
// The baseline (no authentication) runs at the start of each round and again
// after every few cases, so that each ratio can be taken against the
// baseline measured closest in time: the machine's other work comes and goes.
const baseline = cases.find((c) => c.id === "none");
const others = cases.filter((c) => c !== baseline);
// (A quick run measures it once: its figures are no basis for ratios anyway.)
const baselineEvery = quick ? Number.POSITIVE_INFINITY : 3;
for (let round = 0; round < settings.rounds; round++) {
  // Rotate the order, so that no configuration always runs first or last.
  const rotated = others.map((_, i) => others[(i + round) % others.length] as Case);
  const order: Case[] = [];
  rotated.forEach((c, i) => {
    if (baseline !== undefined && i % baselineEvery === 0) {
      order.push(baseline);
    }
    order.push(c);
  });
  if (baseline !== undefined && !quick) {
    order.push(baseline);
  }
  for (const c of order) {
    log(`round ${round + 1}/${settings.rounds}: ${c.id}`);
    const server = await startServer(c.server);
    cursors.clear();
    try {
      const first = c.loads[0];
      if (first !== undefined && settings.serverWarmup > 0) {
        await measure(first, server, settings.serverWarmup);
      }
      for (const load of c.loads) {
        const sample = { ...(await measure(load, server)), round, at: Date.now() - started };
        samples.set(load.id, [...(samples.get(load.id) ?? []), sample]);
      }
    } finally {
      await server.stop();
    }
  }
}
const loadAfter = loadavg();

const memory: MemoryResult[] = [];
if (!values["no-memory"]) {
  // The default cache (bound by maxEntries first) on a method any valid token
  // may call; and a cache bound by maxBytes alone, on a method whose rule
  // reads the scopes (their sets then live beside the cached claims).
  for (const [tokens, entries, bytes, method] of [
    [settings.memoryTokens, 10_000, 16 * 1024 * 1024, "whoAmI"],
    [Math.min(settings.memoryTokens, 300_000), 10_000_000, 16 * 1024 * 1024, "listNotes"],
  ].slice(0, quick ? 1 : 2) as [number, number, number, string][]) {
    log(`memory: ${tokens} tokens, maxEntries ${entries}, maxBytes ${bytes}, ${method}`);
    const line = await runNode(
      "memory.ts",
      [String(tokens), String(entries), String(bytes), method],
      ["--expose-gc"],
    );
    memory.push(JSON.parse(line) as MemoryResult);
  }
}

const machine: Machine = {
  cpus: cpus().length,
  cpuModel: cpuModel(),
  memoryGiB: totalmem() / 2 ** 30,
  node: process.version,
  h2load: execFileSync("h2load", ["--version"]).toString().trim(),
  pinning: pinning.note,
  loadBefore,
  loadAfter,
  date: new Date().toISOString(),
  settings: {
    rounds: settings.rounds,
    seconds: settings.seconds,
    warmup: settings.warmup,
    serverWarmup: settings.serverWarmup,
    connections: settings.h2loadProcesses,
    streams: settings.streams,
    warmTokens: settings.warmTokens,
    coldTokens: settings.coldTokens,
    quick,
  },
  minutes: (Date.now() - started) / 60_000,
};

function cpuModel(): string {
  const info = readFileSync("/proc/cpuinfo", "utf8");
  return /model name\s*:\s*(.*)/.exec(info)?.[1] ?? cpus()[0]?.model ?? "unknown";
}

const { markdown, failures } = render({
  machine,
  samples,
  memory,
  algs: settings.algs,
  refusalAlg,
});
console.log(markdown);
writeFileSync(
  join(cacheDir, "last-run.json"),
  JSON.stringify({ machine, samples: [...samples], memory }, null, 1),
);
if (write) {
  writeSection("servers", markdown);
  log(`wrote ${resultsPath}`);
  if (!values["no-micro"]) {
    log("micro benchmark");
    await runNode("micro.ts", [], ["--expose-gc"]);
  }
}
log(`done in ${machine.minutes.toFixed(1)} min; ${failures} unexpected outcomes`);
process.exit(failures === 0 ? 0 : 1);
