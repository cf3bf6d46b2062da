// Runs h2load (nghttp2) against a server, one or more processes side by side,
// and reads req/s from its summary and p50/p99 from its per-request logs.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { percentile } from "./stats.js";

export interface H2loadSpec {
  readonly url: string;
  readonly protocol: "connect" | "grpc";
  /**
   * One entry per h2load process: the `authorization` value it sends on every
   * request, or `undefined` for none. h2load sends the same headers on every
   * request, so distinct tokens need distinct processes.
   */
  readonly authorizations: readonly (string | undefined)[];
  /** Per process, more headers it sends on every request (a DPoP proof). */
  readonly extraHeaders?: readonly (Readonly<Record<string, string>> | undefined)[] | undefined;
  /** Concurrent streams per process (each process opens one connection). */
  readonly streams: number;
  readonly warmupSeconds: number;
  readonly seconds: number;
  /** A file sent as the request body of every request. */
  readonly bodyFile?: string;
  /** A command prefix that pins the load generator, e.g. ["taskset", "-c", "1"]. */
  readonly pin: readonly string[];
  /** HTTP/1.1 instead of HTTP/2 (`streams` then pipelines requests on the connection). */
  readonly h1?: boolean;
}

export interface LoadResult {
  readonly requests: number;
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Requests answered with HTTP 2xx (gRPC refusals are 200 too: see the probe). */
  readonly status2xx: number;
  readonly status4xx: number;
  readonly errors: number;
}

/** The headers of the one unary method, for each protocol. */
export function protocolHeaders(protocol: "connect" | "grpc"): Record<string, string> {
  return protocol === "grpc"
    ? { ":method": "POST", "content-type": "application/grpc", te: "trailers" }
    : { ":method": "POST", "content-type": "application/proto", "connect-protocol-version": "1" };
}

/**
 * runH2load runs the load; with `warmupSeconds`, a warm-up run of the same
 * load first, in processes of its own, so that `beforeMeasuring` (which reads
 * the server's CPU time) sees only the measured run follow.
 */
export async function runH2load(
  spec: H2loadSpec,
  path: string,
  beforeMeasuring: () => Promise<void> = async () => {},
): Promise<LoadResult> {
  if (spec.warmupSeconds > 0) {
    await h2loadProcesses({ ...spec, seconds: spec.warmupSeconds }, path, undefined);
  }
  await beforeMeasuring();
  const dir = mkdtempSync(join(tmpdir(), "h2load-"));
  try {
    return await h2loadProcesses(spec, path, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function h2loadProcesses(
  spec: H2loadSpec,
  path: string,
  dir: string | undefined,
): Promise<LoadResult> {
  {
    const outputs = await Promise.all(
      spec.authorizations.map((authorization, i) => {
        const headers = { ...protocolHeaders(spec.protocol) };
        if (authorization !== undefined) {
          Object.assign(headers, { authorization });
        }
        Object.assign(headers, spec.extraHeaders?.[i]);
        const args = [
          "-D",
          `${Math.round(spec.seconds * 1000)}ms`,
          "-c",
          "1",
          "-m",
          String(spec.streams),
          ...(spec.h1 === true ? ["--h1"] : []),
          ...Object.entries(headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]),
          ...(spec.bodyFile === undefined ? [] : ["-d", spec.bodyFile]),
          ...(dir === undefined ? [] : [`--log-file=${join(dir, `log-${i}.txt`)}`]),
          `${spec.url}${path}`,
        ];
        return run([...spec.pin, "h2load", ...args]);
      }),
    );
    let reqPerSec = 0;
    let requests = 0;
    let status2xx = 0;
    let status4xx = 0;
    let errors = 0;
    for (const out of outputs) {
      const finished = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
      const counts =
        /requests: (\d+) total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed, (\d+) errored/.exec(
          out,
        );
      const codes = /status codes: (\d+) 2xx, \d+ 3xx, (\d+) 4xx/.exec(out);
      if (finished === null || counts === null || codes === null) {
        throw new Error(`h2load: unexpected output:\n${out}`);
      }
      reqPerSec += Number(finished[1]);
      requests += Number(counts[1]);
      errors += Number(counts[3]);
      status2xx += Number(codes[1]);
      status4xx += Number(codes[2]);
    }
    const latencies: number[] = [];
    spec.authorizations.forEach((_, i) => {
      if (dir === undefined) {
        return;
      }
      for (const line of readFileSync(join(dir, `log-${i}.txt`), "utf8").split("\n")) {
        const [, status, micros] = line.split("\t");
        if (status !== undefined && status !== "0" && micros !== undefined) {
          latencies.push(Number(micros) / 1000);
        }
      }
    });
    latencies.sort((a, b) => a - b);
    return {
      requests,
      reqPerSec,
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      status2xx,
      status4xx,
      errors,
    };
  }
}

/** run starts a command and resolves to its stdout; a non-zero exit rejects. */
export function run(command: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const [file = "", ...args] = command;
    const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.once("error", reject);
    child.once("close", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${file} exited with ${code}: ${err || out}`)),
    );
  });
}
