// Heap after many distinct valid tokens have passed the verified-token cache.
// Each token goes through the request gate twice, as two calls to a server
// would (the gate parses the header, verifies, checks the method's rule; the
// cache admits a token on its second verification), so that every token is
// cached and the cache runs full, evicting, for the whole run.
// Runs in its own process with --expose-gc; prints one JSON line.
// Usage: node --expose-gc --import tsx memory.ts <tokens> [<maxEntries> <maxBytes> [<method>]]
// <method>: whoAmI (any valid token: the default rule) or listNotes (scope
// notes:read: the rule reads the token's scopes, whose sets then live beside
// the cached claims).
import { createHandlerContext } from "@connectrpc/connect";
import { createJwtAuth, type JwtAuth } from "connect-jwt";
import { DemoService } from "../gen/demo/v1/demo_pb.js";
import { type Alg, audience, issuer, methodPath, readKey, signer, validClaims } from "./keys.js";

export interface MemoryResult {
  readonly tokens: number;
  readonly method: string;
  readonly maxEntries: number;
  readonly maxBytes: number;
  /** Heap used after a full GC, before any token: bytes. */
  readonly heapBefore: number;
  /** Heap growth after a full GC at each checkpoint: [tokens so far, bytes]. */
  readonly growth: readonly (readonly [number, number])[];
  /** The largest growth seen at any checkpoint. */
  readonly maxGrowth: number;
  readonly seconds: number;
}

const tokens = Number(process.argv[2] ?? 1_000_000);
const maxEntries = Number(process.argv[3] ?? 10_000);
const maxBytes = Number(process.argv[4] ?? 16 * 1024 * 1024);
const methodName = process.argv[5] === "listNotes" ? "listNotes" : "whoAmI";
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.error("run with --expose-gc");
  process.exit(2);
}
const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

const alg: Alg = "HS256"; // the cheapest to mint: the cache does not care which
const material = readKey(alg);
const sign = signer(material);
const method = DemoService.method[methodName];
const options = {
  secret: new TextEncoder().encode(material.secret),
  algorithms: [alg],
  issuer,
  audience,
  cache: { maxEntries, maxBytes },
};
function call(auth: JwtAuth, token: string) {
  return auth.requestGate(
    createHandlerContext({
      service: DemoService,
      method,
      protocolName: "connect",
      requestMethod: "POST",
      url: `http://127.0.0.1${methodPath}`,
      requestHeader: { authorization: `Bearer ${token}` },
    }),
  );
}
const now = Math.floor(Date.now() / 1000);
// Warm the code paths first, with an instance of its own that is then thrown
// away: what V8 compiles and the feedback it keeps take a few MiB that are no
// part of the cache. The measured instance starts empty.
async function warmUp() {
  const warm = createJwtAuth(options);
  for (let i = 0; i < Math.min(tokens, 20_000); i += 256) {
    await Promise.all(
      Array.from({ length: 256 }, async (_, j) => {
        const token = sign(validClaims(-1 - i - j, now));
        await call(warm, token);
        await call(warm, token);
      }),
    );
  }
}
await warmUp();
const auth = createJwtAuth(options);
const heapBefore = heap();
const checkpoints = new Set(
  [1_000, 10_000, 100_000, 200_000, 300_000, 400_000, 600_000, 1_000_000, tokens].filter(
    (n) => n <= tokens,
  ),
);
const growth: [number, number][] = [];
const started = performance.now();
const batch = 256;
for (let done = 0; done < tokens; ) {
  const n = Math.min(batch, tokens - done);
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const token = sign(validClaims(done + i, now));
      await call(auth, token);
      await call(auth, token);
    }),
  );
  done += n;
  for (const checkpoint of checkpoints) {
    if (done - n < checkpoint && done >= checkpoint) {
      growth.push([checkpoint, heap() - heapBefore]);
    }
  }
}
const result: MemoryResult = {
  tokens,
  method: `${DemoService.typeName}/${method.name}`,
  maxEntries,
  maxBytes,
  heapBefore,
  growth,
  maxGrowth: Math.max(...growth.map(([, bytes]) => bytes)),
  seconds: (performance.now() - started) / 1000,
};
console.log(JSON.stringify(result));
