// `npm run bench:micro`: calls in process, through connect-jwt's public API,
// pinned to the servers' CPU. With tinybench: a cache hit at three depths
// (verify, request gate, interceptor), a new token per algorithm next to jose's
// jwtVerify alone, each kind of refusal through the request gate, and DPoP
// calls next to a hand-written interceptor's jwtVerify. Then the
// scaling table: how a call's cost grows with the work around it. A full run
// writes RESULTS.md's "micro" section.
//
//   npm run bench:micro
//   npm run bench:micro -- --quick      a smoke run (short tasks, few rounds, ES256)
//   npm run bench:micro -- --json       the tinybench rows as JSON, RESULTS.md left alone
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import {
  createContextValues,
  createHandlerContext,
  type HandlerContext,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import {
  createJwtAuth,
  type DpopReplayStore,
  type JwtAuthOptions,
  memoryReplayStore,
  parseBearerToken,
} from "connect-jwt";
import { redisReplayStore } from "connect-jwt/redis";
import { importSPKI, jwtVerify } from "jose";
import { createClient } from "redis";
import { Bench } from "tinybench";
import { DemoService, WhoAmIRequestSchema, WhoAmIResponseSchema } from "../gen/demo/v1/demo_pb.js";
import { boundToken, dpopClient, dpopOrigin, proof } from "./dpop.js";
import {
  type Alg,
  algorithms,
  audience,
  issuer,
  type KeyMaterial,
  methodPath,
  readKey,
  signer,
  validClaims,
} from "./keys.js";
import { pinThisProcess } from "./processes.js";
import { startRedis } from "./redis.js";
import { runLine, writeSection } from "./results-file.js";
import { measureRow, renderScaling, type ScalingResult } from "./scaling.js";
import { cachedTokenRows, issuerRows, keyRows, methodRows } from "./scaling-rows.js";
import { formatSpread, spread } from "./stats.js";

pinThisProcess();
const { values } = parseArgs({
  options: {
    time: { type: "string" },
    rounds: { type: "string" },
    algs: { type: "string" },
    quick: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
  },
});
const quick = values.quick === true;
const time = Number(values.time ?? (quick ? 50 : 400));
const rounds = Number(values.rounds ?? (quick ? 3 : 31));
/** The length of one batch of the scaling table, ms. */
const batchMs = quick ? 2 : 5;
const algs = (values.algs?.split(",") ?? (quick ? ["ES256"] : algorithms)) as Alg[];
const write = !quick && !values.json && !values["no-write"] && values.algs === undefined;
const started = new Date();
const loadBefore = loadavg();

export interface MicroRow {
  readonly group: string;
  readonly name: string;
  readonly meanUs: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

function options(m: KeyMaterial, extra: Partial<JwtAuthOptions> = {}): JwtAuthOptions {
  const keySource =
    m.secret !== undefined
      ? { secret: new TextEncoder().encode(m.secret) }
      : { publicKey: m.publicPem ?? "" };
  return { ...keySource, algorithms: [m.alg], issuer, audience, ...extra };
}

function context(header: Record<string, string>): HandlerContext {
  return createHandlerContext({
    service: DemoService,
    method: DemoService.method.whoAmI,
    protocolName: "connect",
    requestMethod: "POST",
    url: `http://127.0.0.1${methodPath}`,
    requestHeader: header,
  });
}

async function refuses(gate: (ctx: HandlerContext) => Promise<void>, ctx: HandlerContext) {
  try {
    await gate(ctx);
  } catch {
    return;
  }
  throw new Error("expected a refusal");
}

const rows: MicroRow[] = [];
async function run(group: string, add: (bench: Bench) => void) {
  const bench = new Bench({ time, warmupTime: Math.min(200, time / 2) });
  add(bench);
  await bench.run();
  for (const task of bench.tasks) {
    const result = task.result;
    if (result.state === "errored") {
      throw result.error;
    }
    if (result.state === "completed") {
      const us = (ms: number) => ms * 1000;
      rows.push({
        group,
        name: task.name,
        meanUs: us(result.latency.mean),
        p50Us: us(result.latency.p50),
        p99Us: us(result.latency.p99),
      });
    }
  }
  if (!values.json) {
    for (const r of rows.filter((row) => row.group === group)) {
      const f = (v: number) => v.toFixed(2).padStart(8);
      console.log(
        `${`${r.group}: ${r.name}`.padEnd(70)} mean ${f(r.meanUs)} µs  p50 ${f(r.p50Us)} µs  p99 ${f(r.p99Us)} µs`,
      );
    }
  }
}

const es = readKey("ES256");
const signEs = signer(es);
const now = Math.floor(Date.now() / 1000);
const valid = signEs(validClaims(0));
const header = `Bearer ${valid}`;

// 1. A cache hit, at three depths: the verifier, the gate, the interceptor.
{
  const auth = createJwtAuth(options(es));
  await auth.verify(valid);
  await auth.verify(valid);
  const ctx = context({ authorization: header });
  const req = {
    stream: false,
    service: DemoService,
    method: DemoService.method.whoAmI,
    requestMethod: "POST",
    url: `http://127.0.0.1${methodPath}`,
    signal: new AbortController().signal,
    header: new Headers({ authorization: header, "content-type": "application/proto" }),
    contextValues: createContextValues(),
    message: create(WhoAmIRequestSchema),
  } as UnaryRequest;
  const response = {
    stream: false,
    service: DemoService,
    method: DemoService.method.whoAmI,
    header: new Headers(),
    trailer: new Headers(),
    message: create(WhoAmIResponseSchema),
  } as UnaryResponse;
  const call = auth.interceptor(async () => response);
  await run("cache hit (ES256 token)", (bench) => {
    bench
      .add("verify", () => auth.verify(valid))
      .add("request gate", () => auth.requestGate(ctx))
      .add("interceptor alone (no gate)", () => call(req))
      .add("parseBearerToken (for scale)", () => {
        parseBearerToken(header);
      })
      .add("createHandlerContext (for scale)", () => {
        context({ authorization: header });
      });
  });
}

// 2. A new token on every call (4096 tokens cycled through a cache of 1024),
// next to jose's jwtVerify alone on the same tokens.
for (const alg of algs) {
  const material = readKey(alg);
  const sign = signer(material);
  const pool = Array.from({ length: 4096 }, (_, i) => sign(validClaims(i, now)));
  const auth = createJwtAuth(options(material, { cache: { maxEntries: 1024 } }));
  const joseKey =
    material.secret !== undefined
      ? new TextEncoder().encode(material.secret)
      : await importSPKI(material.publicPem ?? "", alg);
  const joseOptions = { issuer, audience, algorithms: [alg] };
  let i = 0;
  let j = 0;
  await run(`a new token, ${alg}`, (bench) => {
    bench
      .add(`connect-jwt verify ${alg}`, () => auth.verify(pool[i++ & 4095] as string))
      .add(`jose jwtVerify ${alg}`, () =>
        jwtVerify(pool[j++ & 4095] as string, joseKey, joseOptions),
      );
  });
}

// 3. Refusals through the request gate (ES256 server).
{
  const hs = signer({ alg: "HS256", secret: "a-secret-that-is-not-the-servers-0123456789" });
  const [h, p, s = ""] = valid.split(".");
  const flipped = `${s.slice(0, 20)}${s[20] === "A" ? "B" : "A"}${s.slice(21)}`;
  const kinds: Record<string, string | undefined> = {
    missing: undefined,
    malformed: "Bearer eyJhbGciOiJFUzI1NiJ9.bm90LWpzb24.c2ln",
    expired: `Bearer ${signEs({ ...validClaims(1), iat: now - 7200, exp: now - 3600 })}`,
    "wrong issuer": `Bearer ${signEs({ ...validClaims(2), iss: "https://other.example/" })}`,
    "wrong audience": `Bearer ${signEs({ ...validClaims(3), aud: "other-api" })}`,
    "wrong algorithm": `Bearer ${hs(validClaims(4))}`,
    "bad signature": `Bearer ${h}.${p}.${flipped}`,
  };
  const auth = createJwtAuth(options(es));
  await run("refusals (ES256, request gate), the same token again", (bench) => {
    for (const [kind, value] of Object.entries(kinds)) {
      const ctx = context(value === undefined ? {} : { authorization: value });
      bench.add(kind, () => refuses(auth.requestGate, ctx));
    }
  });
  // Without the refusal cache, each refusal is that of a token never seen:
  // decoded and checked every time.
  const uncached = createJwtAuth(options(es, { cache: { maxRefusals: 0 } }));
  await run("refusals (ES256, request gate), a token never seen (maxRefusals: 0)", (bench) => {
    for (const [kind, value] of Object.entries(kinds)) {
      if (value !== undefined && kind !== "bad signature") {
        const ctx = context({ authorization: value });
        bench.add(kind, () => refuses(uncached.requestGate, ctx));
      }
    }
  });
}

// 4. DPoP: a cached token and a new proof on every call (one signature check,
// the proof's), next to a hand-written interceptor's jose jwtVerify of the
// token (one signature check, the token's); and a proof refused before its
// signature (htm GET on a POST).
{
  const client = dpopClient();
  const token = boundToken(signEs, client, 0);
  const proofs = Array.from({ length: quick ? 4000 : 40_000 }, (_, i) => proof(client, token, i));
  const auth = createJwtAuth(
    options(es, { dpop: { origins: [dpopOrigin], replayStore: memoryReplayStore() } }),
  );
  const dpopContext = (dpop: string) => context({ authorization: `DPoP ${token}`, dpop });
  await auth.requestGate(dpopContext(proofs[0] as string));
  const refused = dpopContext(proof(client, token, -1, "GET"));
  const joseKey = await importSPKI(es.publicPem ?? "", "ES256");
  const joseOptions = { issuer, audience, algorithms: ["ES256"] };
  let i = 1;
  await run("DPoP (ES256 token and proof, request gate)", (bench) => {
    bench
      .add("a cached token, a new proof", () => {
        const next = proofs[i++];
        if (next === undefined) {
          throw new Error("bench:micro: more DPoP calls than proofs made; raise the pool");
        }
        return auth.requestGate(dpopContext(next));
      })
      .add("jose jwtVerify of the token (a hand-written interceptor)", () =>
        jwtVerify(token, joseKey, joseOptions),
      )
      .add("a proof refused before its signature (htm)", () => refuses(auth.requestGate, refused));
  });
}

// 5. DPoP with the Redis replay store against the in-memory one: calls per
// second through the request gate with 32 calls in flight (so that Redis's
// round trip overlaps, as on a server under load), the two stores taking
// turns round by round.
const replayStoreRatios: number[] = [];
{
  const redis = await startRedis();
  const client = createClient({ socket: { host: "127.0.0.1", port: redis.port } });
  client.on("error", () => {});
  await client.connect();
  try {
    const dpopKey = dpopClient();
    const token = boundToken(signEs, dpopKey, 1);
    const authWith = (replayStore: DpopReplayStore) =>
      createJwtAuth(options(es, { dpop: { origins: [dpopOrigin], replayStore } }));
    const memory = authWith(memoryReplayStore());
    const shared = authWith(redisReplayStore({ client }));
    const callsPerRound = quick ? 500 : 2000;
    const roundsHere = quick ? 2 : 10;
    let n = 0;
    /** Calls per second of `calls` DPoP calls, 32 in flight, each with a new proof. */
    async function callsPerSecond(auth: ReturnType<typeof createJwtAuth>): Promise<number> {
      const proofs = Array.from({ length: callsPerRound }, () => proof(dpopKey, token, n++));
      await auth.requestGate(
        context({ authorization: `DPoP ${token}`, dpop: proof(dpopKey, token, n++) }),
      );
      const started = performance.now();
      let next = 0;
      const lane = async () => {
        while (next < proofs.length) {
          const dpop = proofs[next++] as string;
          await auth.requestGate(context({ authorization: `DPoP ${token}`, dpop }));
        }
      };
      await Promise.all(Array.from({ length: 32 }, lane));
      return callsPerRound / ((performance.now() - started) / 1000);
    }
    for (let round = 0; round < roundsHere; round++) {
      const rates = new Map<unknown, number>();
      for (const auth of round % 2 === 0 ? [memory, shared] : [shared, memory]) {
        rates.set(auth, await callsPerSecond(auth));
      }
      replayStoreRatios.push((rates.get(shared) ?? 0) / (rates.get(memory) ?? 1));
    }
    console.log(`${replayStoreLine()}`);
  } finally {
    client.destroy();
    await redis.stop();
  }
}

/** The Redis replay store's ratio to the in-memory one, as a line of the results. */
function replayStoreLine(): string {
  return `DPoP with \`redisReplayStore\` against \`memoryReplayStore\`, calls per second through the request gate, 32 in flight, ${replayStoreRatios.length} rounds: ${formatSpread(spread(replayStoreRatios), 3)} (bar ≥ 0.9).`;
}

// 6. How a call's cost grows with the work around it.
const scaling: ScalingResult[] = [];
if (!values.json) {
  // Each dimension is built, measured and let go before the next, and the
  // heap collected before each row, so that no row's batches pay for
  // another's garbage. Why a row may not be flat is shown when it is not.
  const gc = (globalThis as { gc?: () => void }).gc;
  const dimensions = [
    () =>
      methodRows([1, 100, 10_000], {
        "cache hit, each call the next method":
          "each call reads the state of another of 10,000 methods (descriptor, rule, map entries): more memory than the CPU's caches hold, not a longer lookup (one method among 10,000 rules is flat)",
      }),
    () => issuerRows([1, 10, 100]),
    () =>
      keyRows([1, 100], {
        "a new token (cache: false: the key picked, the signature checked)":
          "jose's local JWKS tests every key against the token's header on each call",
      }),
    () =>
      cachedTokenRows([10, 100_000], {
        "cache hit":
          "each call reads another of 100,000 cached tokens (about 90 MB with their claims): more memory than the CPU's caches hold, not a longer lookup (the same token among 100,000 is flat)",
      }),
  ];
  for (const dimension of dimensions) {
    for (const row of await dimension()) {
      gc?.();
      const result = await measureRow(row, rounds, batchMs);
      scaling.push(result);
      console.log(renderScaling([result]).split("\n")[2]);
    }
  }
}

if (values.json) {
  console.log(JSON.stringify(rows));
}
if (write) {
  const out = [
    "## In process (`npm run bench:micro`)",
    "",
    `Generated by micro.ts, one process pinned to CPU 0. ${runLine(started, loadBefore)}`,
    "",
    `tinybench, ${time} ms per task:`,
    "",
    "| group | task | mean µs | p50 µs | p99 µs |",
    "|---|---|---:|---:|---:|",
    ...rows.map(
      (m) =>
        `| ${m.group} | ${m.name} | ${m.meanUs.toFixed(2)} | ${m.p50Us.toFixed(2)} | ${m.p99Us.toFixed(2)} |`,
    ),
    "",
    replayStoreLine(),
    "",
    "### How a call's cost grows with the work around it",
    "",
    `Each row is one call made with each size of one thing around it. The sizes take turns in ${rounds} rounds, each a batch of calls (about ${batchMs} ms) timed as one; a ratio is taken within a round against the row's smallest size. A refusal is decided afresh on every call (\`maxRefusals: 0\`), as for a token never seen. HS256 tokens, except for issuers and keys (ES256, a JWKS per issuer).`,
    "",
    renderScaling(scaling),
  ];
  writeSection("micro", out.join("\n"));
}
