// `npm run bench:cold-steps`: a cold verification (a token never seen) built
// up step by step, one verification at a time on one CPU, which the crypto
// job of the thread pool shares: jose's compactVerify alone, jose's jwtVerify
// (the hand-written interceptor's call), then connect-jwt's steps before and
// after compactVerify one by one, then connect-jwt's verify itself. The
// variants take turns in blocks of new tokens; prints the median µs per
// verification of each over the blocks, and its difference to compactVerify.
//
//   npm run bench:cold-steps -- --alg RS256
//   npm run bench:cold-steps -- --quick      a smoke run (short blocks, ES256)
import { spawnSync } from "node:child_process";
import { createPublicKey, type KeyObject } from "node:crypto";
import { parseArgs } from "node:util";
import { type CryptoKey, compactVerify, importSPKI, jwtVerify } from "jose";
import { isCompactJws } from "../src/core/bearer-token.js";
import { freezeParsedClaims } from "../src/core/claims.js";
import { decodeSegment } from "../src/core/verifier.js";
import { createVerifier, type VerifierOptions } from "../src/index.js";
import { type Alg, algorithms, audience, issuer, readKey } from "./keys.js";
import { ensurePool } from "./pools.js";
import { pinning } from "./processes.js";
import { formatSpread, spread } from "./stats.js";

// Run pinned to the servers' CPU, as the servers run, so that the thread
// pool's crypto shares the CPU with the JavaScript around it.
if (pinning.server.length > 0 && process.env.CONNECT_JWT_BENCH_PINNED === undefined) {
  const [command = "", ...prefix] = pinning.server;
  const child = spawnSync(
    command,
    [...prefix, process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    { stdio: "inherit", env: { ...process.env, CONNECT_JWT_BENCH_PINNED: "1" } },
  );
  process.exit(child.status ?? 1);
}

const { values } = parseArgs({
  options: {
    alg: { type: "string" },
    blocks: { type: "string" },
    block: { type: "string" },
    quick: { type: "boolean", default: false },
  },
});
const quick = values.quick === true;
const alg = (values.alg ?? "ES256") as Alg;
const blocks = Number(values.blocks ?? (quick ? 1 : 7));
const block = Number(values.block ?? (quick ? 50 : 800));
if (!algorithms.includes(alg) || !(blocks >= 1) || !(block >= 1)) {
  throw new Error(
    `bench:cold-steps: --alg one of ${algorithms.join(", ")}, --blocks ≥ 1, --block ≥ 1`,
  );
}

const material = readKey(alg);
// connect-jwt's key as it holds it (a KeyObject, or the secret's bytes), and
// the hand-written interceptor's (importSPKI, or the secret's bytes).
const secret =
  material.secret === undefined ? undefined : new TextEncoder().encode(material.secret);
const ownKey: KeyObject | Uint8Array = secret ?? createPublicKey(material.publicPem ?? "");
const joseKey: CryptoKey | Uint8Array = secret ?? (await importSPKI(material.publicPem ?? "", alg));
const claimPolicy = { issuer, audience, algorithms: [alg] };
const keySource = secret === undefined ? { publicKey: material.publicPem ?? "" } : { secret };
const verifierOptions: VerifierOptions = { ...keySource, ...claimPolicy };
const cached = createVerifier(verifierOptions);
const uncached = createVerifier({ ...verifierOptions, cache: false });

const verifyOnly = { algorithms: [alg] };
const check = (key: KeyObject | Uint8Array, token: string) =>
  compactVerify(token, key as Uint8Array, verifyOnly);
function payloadOf(token: string): Record<string, unknown> {
  const first = token.indexOf(".");
  const decoded = decodeSegment(token.slice(first + 1, token.indexOf(".", first + 1)));
  if (decoded instanceof Error) {
    throw decoded;
  }
  return decoded;
}

const variants: Record<string, (token: string) => Promise<unknown>> = {
  "jose compactVerify": (t) => check(ownKey, t),
  "jose jwtVerify": (t) => jwtVerify(t, joseKey as Uint8Array, claimPolicy),
  "syntax check, compactVerify": async (t) => {
    if (!isCompactJws(t)) {
      throw new Error("malformed");
    }
    return check(ownKey, t);
  },
  "payload decoded, compactVerify": async (t) => {
    const payload = payloadOf(t);
    await check(ownKey, t);
    return payload;
  },
  "payload decoded, compactVerify, frozen": async (t) => {
    const payload = payloadOf(t);
    await check(ownKey, t);
    return freezeParsedClaims(payload);
  },
  "connect-jwt verify": (t) => cached.verify(t),
  "connect-jwt verify, cache: false": (t) => uncached.verify(t),
};
const names = Object.keys(variants);

// One block per variant, unmeasured, first: every variant's code compiled.
const pool = await ensurePool(alg, "cold", (blocks + 1) * names.length * block);
let next = 0;
const times = names.map((): number[] => []);
for (let round = 0; round <= blocks; round++) {
  for (const [i, name] of names.entries()) {
    const verify = variants[name] as (token: string) => Promise<unknown>;
    const started = performance.now();
    for (let n = 0; n < block; n++) {
      await verify(pool.tokens[next++] as string);
    }
    if (round > 0) {
      times[i]?.push(((performance.now() - started) * 1000) / block);
    }
  }
}
const base = spread(times[0] ?? []).median;
console.log(`${alg}: ${blocks} blocks of ${block} new tokens per variant, one at a time`);
console.log("| variant | µs per verification: median (min–max) | − compactVerify |");
console.log("|---|---:|---:|");
names.forEach((name, i) => {
  const s = spread(times[i] ?? []);
  const diff = i === 0 ? "" : `${s.median - base >= 0 ? "+" : ""}${(s.median - base).toFixed(1)}`;
  console.log(`| ${name} | ${formatSpread(s, 1)} | ${diff} |`);
});
