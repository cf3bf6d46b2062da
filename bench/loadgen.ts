// A small HTTP/2 load generator on node:http2, for what h2load cannot do:
// a different `authorization` header on every request. It runs in its own
// process (started by run.ts), keeps `connections × streams` requests in
// flight for a fixed time, and prints one JSON line with the results.
//
// Usage: node --import tsx loadgen.ts '<json LoadgenOptions>'

import { readFileSync } from "node:fs";
import * as http2 from "node:http2";
import { watchOutcome } from "./outcome.js";

export interface LoadgenOptions {
  readonly url: string;
  readonly path: string;
  readonly protocol: "connect" | "grpc";
  /** A file with one token per line; each request takes the next (cycling), or none. */
  readonly tokensFile?: string;
  readonly connections: number;
  readonly streams: number;
  readonly warmupSeconds: number;
  /** The index of the first token to send (a warm-up run before used the ones before it). */
  readonly firstToken?: number;
  readonly seconds: number;
}

export interface LoadgenResult {
  readonly requests: number;
  readonly ok: number;
  readonly refused: number;
  readonly errors: number;
  readonly seconds: number;
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Tokens used in the measured interval, and whether any was used twice in the whole run. */
  readonly tokensUsed: number;
  readonly tokensReused: boolean;
  /** The index after the last token sent: where a following run should start. */
  readonly nextToken: number;
}

const options = JSON.parse(process.argv[2] ?? "{}") as LoadgenOptions;
const tokens =
  options.tokensFile === undefined
    ? []
    : readFileSync(options.tokensFile, "utf8")
        .split("\n")
        .filter((line) => line !== "");
// Headers are prebuilt: one object per token, so the loop only picks one.
const base: http2.OutgoingHttpHeaders =
  options.protocol === "grpc"
    ? {
        ":method": "POST",
        ":path": options.path,
        "content-type": "application/grpc",
        te: "trailers",
      }
    : {
        ":method": "POST",
        ":path": options.path,
        "content-type": "application/proto",
        "connect-protocol-version": "1",
      };
const headerSets =
  tokens.length === 0 ? [base] : tokens.map((t) => ({ ...base, authorization: `Bearer ${t}` }));
const grpcFrame = Buffer.from([0, 0, 0, 0, 0]);

const first = options.firstToken ?? 0;
let next = first;
let measuring = false;
let stopping = false;
let measuredStartToken = 0;
const latencies: number[] = [];
const counts = { requests: 0, ok: 0, refused: 0, errors: 0 };

function one(session: http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => {
    const headers = headerSets[next % headerSets.length] as http2.OutgoingHttpHeaders;
    next++;
    const start = performance.now();
    const grpc = options.protocol === "grpc";
    const stream = session.request(headers, { endStream: !grpc });
    if (grpc) {
      stream.end(grpcFrame);
    }
    const outcome = watchOutcome(stream);
    const done = (failed: boolean) => {
      if (measuring) {
        counts.requests++;
        latencies.push(performance.now() - start);
        if (failed) {
          counts.errors++;
        } else if (grpc ? outcome.grpcStatus === "0" : outcome.status === 200) {
          counts.ok++;
        } else {
          counts.refused++;
        }
      }
      resolve();
    };
    stream.on("close", () => done(stream.rstCode !== 0 && outcome.status === 0));
    stream.on("error", () => {});
  });
}

async function worker(session: http2.ClientHttp2Session) {
  while (!stopping) {
    await one(session);
  }
}

const sessions = await Promise.all(
  Array.from(
    { length: options.connections },
    () =>
      new Promise<http2.ClientHttp2Session>((resolve, reject) => {
        const s = http2.connect(options.url, { peerMaxConcurrentStreams: 1000 });
        s.once("connect", () => resolve(s));
        s.once("error", reject);
      }),
  ),
);
const workers = sessions.flatMap((s) => Array.from({ length: options.streams }, () => worker(s)));
await new Promise((resolve) => setTimeout(resolve, options.warmupSeconds * 1000));
measuring = true;
measuredStartToken = next;
const t0 = performance.now();
await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000));
measuring = false;
const elapsed = (performance.now() - t0) / 1000;
const measuredEndToken = next;
stopping = true;
await Promise.all(workers);
for (const s of sessions) {
  s.close();
}

latencies.sort((a, b) => a - b);
const pick = (q: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
const result: LoadgenResult = {
  ...counts,
  seconds: elapsed,
  reqPerSec: counts.requests / elapsed,
  p50Ms: pick(0.5),
  p99Ms: pick(0.99),
  tokensUsed: measuredEndToken - measuredStartToken,
  tokensReused: tokens.length > 0 && next > tokens.length,
  nextToken: next,
};
console.log(JSON.stringify(result));
