// Token pools on disk, minted once and reused by later runs while they are
// fresh: the warm pool (a few hundred tokens, reused), the cold pool (so
// many tokens that no server sees one twice in a measurement), and the expired
// pool (as many, each expired: refused for its claims alone).
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { type Alg, cacheDir, keyFile, writeAtomically } from "./keys.js";
import { benchDir, nodeCommand } from "./processes.js";

// Tokens live a day; a pool older than this is minted again.
const maxPoolAgeMs = 12 * 3600 * 1000;

export interface Pool {
  readonly file: string;
  readonly tokens: readonly string[];
}

/** The pools: valid tokens (warm, cold), or expired ones. */
export type PoolKind = "warm" | "cold" | "expired";

/** ensurePool returns a pool of at least `count` distinct tokens of `kind` for `alg`. */
export async function ensurePool(alg: Alg, kind: PoolKind, count: number): Promise<Pool> {
  keyFile(alg); // created here, before minters read it in parallel
  const file = join(cacheDir, `pool-${alg}-${kind}.txt`);
  if (existsSync(file) && Date.now() - statSync(file).mtimeMs < maxPoolAgeMs) {
    const tokens = readLines(file);
    if (tokens.length >= count) {
      return { file, tokens };
    }
  }
  // Disjoint index ranges per pool, so that no two pools share a token.
  const base = { warm: 0, cold: 1_000_000_000, expired: 2_000_000_000 }[kind];
  const workers = Math.max(1, Math.min(availableParallelism(), Math.ceil(count / 2000)));
  const per = Math.ceil(count / workers);
  const parts = Array.from({ length: workers }, (_, i) => `${file}.part${i}`);
  await Promise.all(
    parts.map(
      (part, i) =>
        new Promise<void>((resolve, reject) => {
          const n = Math.min(per, count - i * per);
          const [cmd = "", ...args] = nodeCommand(
            "mint.ts",
            alg,
            String(n),
            String(base + i * per),
            part,
            ...(kind === "expired" ? ["expired"] : []),
          );
          const child = spawn(cmd, args, { cwd: benchDir, stdio: "inherit" });
          child.once("error", reject);
          child.once("exit", (code) =>
            code === 0 ? resolve() : reject(new Error(`mint ${alg} exited with ${code}`)),
          );
        }),
    ),
  );
  const tokens = parts.flatMap(readLines);
  writeAtomically(file, `${tokens.join("\n")}\n`);
  for (const part of parts) {
    rmSync(part, { force: true });
  }
  return { file, tokens };
}

function readLines(file: string): string[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line !== "");
}
