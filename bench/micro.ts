// Micro benchmark of the verifier paths, to see where the time of one call goes:
// header parsing, decoding, a cache hit (verify, gate, interceptor), a cold
// verification per algorithm next to jose's jwtVerify alone, and each kind of
// refusal through the request gate.
//
// Usage: npm run bench:micro [-- --time 500] [-- --json]
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import {
  createContextValues,
  createHandlerContext,
  type HandlerContext,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { decodeJwt, decodeProtectedHeader, importSPKI, jwtVerify } from "jose";
import { Bench } from "tinybench";
import { DemoService, WhoAmIRequestSchema, WhoAmIResponseSchema } from "../gen/demo/v1/demo_pb.js";
import { isCompactJws } from "../src/core/bearer-token.js";
import { freezeClaims, type JwtClaims } from "../src/core/claims.js";
import { TokenCache } from "../src/core/token-cache.js";
import {
  createJwtAuth,
  type JwtAuth,
  type JwtAuthOptions,
  parseBearerToken,
} from "../src/index.js";
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

const { values } = parseArgs({
  options: {
    time: { type: "string", default: "400" },
    json: { type: "boolean", default: false },
    algs: { type: "string" },
  },
});
const time = Number(values.time);
const algs = (values.algs?.split(",") ?? algorithms) as Alg[];

export interface MicroRow {
  readonly group: string;
  readonly name: string;
  readonly meanUs: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly opsPerSec: number;
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

function unaryRequest(header: Record<string, string>): UnaryRequest {
  return {
    stream: false,
    service: DemoService,
    method: DemoService.method.whoAmI,
    requestMethod: "POST",
    url: `http://127.0.0.1${methodPath}`,
    signal: new AbortController().signal,
    header: new Headers(header),
    contextValues: createContextValues(),
    message: create(WhoAmIRequestSchema),
  } as UnaryRequest;
}

const response: UnaryResponse = {
  stream: false,
  service: DemoService,
  method: DemoService.method.whoAmI,
  header: new Headers(),
  trailer: new Headers(),
  message: create(WhoAmIResponseSchema),
} as UnaryResponse;

async function refuses(gate: JwtAuth["requestGate"], ctx: HandlerContext) {
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
    if (result.state !== "completed") {
      continue;
    }
    rows.push({
      group,
      name: task.name,
      meanUs: result.latency.mean * 1000,
      p50Us: result.latency.p50 * 1000,
      p99Us: result.latency.p99 * 1000,
      opsPerSec: result.throughput.mean,
    });
  }
  if (!values.json) {
    printRows(rows.filter((r) => r.group === group));
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const es = readKey("ES256");
const signEs = signer(es);
const now = Math.floor(Date.now() / 1000);
const valid = signEs(validClaims(0));
const header = `Bearer ${valid}`;

// 1. The steps of a verification besides jose's jwtVerify: parsing, the
// syntax check, decoding for the prechecks, freezing the claims, the cache.
await run("steps", (bench) => {
  const payload = decodeJwt(valid);
  const claims = freezeClaims(payload) as JwtClaims;
  const cache = new TokenCache();
  const tokens = Array.from({ length: 40_000 }, (_, i) => `${valid}${i}`);
  let i = 0;
  for (const t of tokens.slice(0, 10_000)) {
    cache.set(t, claims, now + 3600);
  }
  bench
    .add("parseBearerToken", () => {
      parseBearerToken(header);
    })
    .add("isCompactJws", () => {
      isCompactJws(valid);
    })
    .add("decode header + payload with jose (before)", () => {
      decodeProtectedHeader(valid);
      decodeJwt(valid);
    })
    .add("decode header + payload with Buffer (now)", () => {
      const first = valid.indexOf(".");
      const second = valid.indexOf(".", first + 1);
      JSON.parse(utf8.decode(Buffer.from(valid.slice(0, first), "base64url")));
      JSON.parse(utf8.decode(Buffer.from(valid.slice(first + 1, second), "base64url")));
    })
    .add("freezeClaims", () => {
      freezeClaims(payload);
    })
    .add("TokenCache.get, a hit among 10,000", () => {
      cache.get(tokens[i++ % 10_000] as string, now, 5);
    })
    .add("TokenCache.set, evicting the oldest of 10,000", () => {
      cache.set(tokens[10_000 + (i++ % 30_000)] as string, claims, now + 3600);
    });
});

// 2. A cache hit, at three depths: the verifier, the gate, the interceptor.
{
  const auth = createJwtAuth(options(es));
  await auth.verify(valid);
  const ctx = context({ authorization: header });
  const req = unaryRequest({ authorization: header, "content-type": "application/proto" });
  const call = auth.interceptor(async () => response);
  await run("cache hit (ES256 token)", (bench) => {
    bench
      .add("verify", async () => {
        await auth.verify(valid);
      })
      .add("request gate", async () => {
        await auth.requestGate(ctx);
      })
      .add("interceptor alone (no gate)", async () => {
        await call(req);
      })
      .add("createHandlerContext (for scale)", () => {
        context({ authorization: header });
      });
  });
}

// 3. Cold: every call a token the cache has not seen (4096 tokens cycled
// through a cache of 1024), next to jose's jwtVerify alone on the same tokens.
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
  await run(`cold verify ${alg}`, (bench) => {
    bench
      .add(`connect-jwt verify ${alg}`, async () => {
        await auth.verify(pool[i++ & 4095] as string);
      })
      .add(`jose jwtVerify ${alg}`, async () => {
        await jwtVerify(pool[j++ & 4095] as string, joseKey, joseOptions);
      });
  });
}

// 4. Refusals through the request gate (ES256 server).
{
  const auth = createJwtAuth(options(es));
  const hs = signer({ alg: "HS256", secret: "a-secret-that-is-not-the-servers-0123456789" });
  const expired = signEs({ ...validClaims(1), iat: now - 7200, exp: now - 3600 });
  const [h, p, s = ""] = valid.split(".");
  const flipped = `${s.slice(0, 20)}${s[20] === "A" ? "B" : "A"}${s.slice(21)}`;
  const kinds: Record<string, string | undefined> = {
    missing: undefined,
    malformed: "Bearer eyJhbGciOiJFUzI1NiJ9.bm90LWpzb24.c2ln",
    expired: `Bearer ${expired}`,
    "wrong issuer": `Bearer ${signEs({ ...validClaims(2), iss: "https://other.example/" })}`,
    "wrong audience": `Bearer ${signEs({ ...validClaims(3), aud: "other-api" })}`,
    "wrong algorithm": `Bearer ${hs(validClaims(4))}`,
    "bad signature": `Bearer ${h}.${p}.${flipped}`,
  };
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

function printRows(list: readonly MicroRow[]) {
  const f = (v: number) => v.toFixed(2).padStart(9);
  for (const r of list) {
    console.log(
      `${`${r.group}: ${r.name}`.padEnd(58)} mean ${f(r.meanUs)} µs  p50 ${f(r.p50Us)} µs  p99 ${f(r.p99Us)} µs  ${Math.round(r.opsPerSec).toLocaleString("en-US").padStart(10)} ops/s`,
    );
  }
}

if (values.json) {
  console.log(JSON.stringify(rows));
}
