import { join } from "node:path";
import type { BuildOptions } from "esbuild";

/** The repository's root. */
export const root = join(import.meta.dirname, "..", "..");

/**
 * The esbuild options that bundle `entry` (a path from the root) for a
 * neutral platform, as a fetch-API runtime runs it: one ES module in memory,
 * with jose's WebCrypto build.
 */
export function neutralBuild(entry: string): BuildOptions & { write: false } {
  return {
    entryPoints: [join(root, entry)],
    absWorkingDir: root,
    bundle: true,
    write: false,
    format: "esm",
    platform: "neutral",
    mainFields: ["module", "main"],
    // jose's export map leads every runtime to its WebCrypto build.
    conditions: ["worker", "browser", "import", "default"],
    logLevel: "silent",
  };
}
