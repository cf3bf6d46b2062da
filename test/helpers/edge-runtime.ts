import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { build } from "esbuild";
import { neutralBuild, root } from "./neutral-bundle.js";

/** A server of the edge example running on a runtime, reachable at `baseUrl`. */
export interface EdgeServer {
  readonly baseUrl: string;
  stop(): Promise<void>;
}

/** A fetch-API runtime that serves the edge example (example/edge/). */
export interface EdgeRuntime {
  readonly name: "bun" | "deno" | "workerd";
  /** What the README's runtime table calls it. */
  readonly title: string;
  /** The example's entry for this runtime. */
  readonly entry: string;
  /** What must be installed (by `npm ci`) to run it. */
  readonly installed: string;
  /** Bundles the entry and serves it with `env` as its configuration. */
  start(env: Record<string, string>): Promise<EdgeServer>;
}

/** Bundles an edge entry into one ES module, as a deploy would: no Node.js, nothing external. */
export async function bundleEdge(entry: string): Promise<string> {
  const result = await build(neutralBuild(entry));
  const [output] = result.outputFiles;
  assert.ok(output !== undefined);
  return output.text;
}

/** Runs `binary` on a bundle and resolves once it prints the URL it listens on. */
async function spawnServer(
  runtime: "bun" | "deno",
  entry: string,
  args: (file: string) => string[],
  env: Record<string, string>,
): Promise<EdgeServer> {
  const work = await mkdtemp(join(tmpdir(), `connect-jwt-${runtime}-`));
  const file = join(work, "server.js");
  await writeFile(file, await bundleEdge(entry));
  const child = spawn(join(root, "node_modules", ".bin", runtime), args(file), {
    env: { ...process.env, ...env, PORT: "0", NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk;
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match !== null) {
        resolve(match[1] as string);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => reject(new Error(`${runtime} exited with ${code}: ${output}`)));
    child.on("error", reject);
  });
  return {
    baseUrl,
    async stop() {
      child.removeAllListeners("exit");
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill();
      await exited;
      await rm(work, { recursive: true, force: true });
    },
  };
}

/** The runtimes the edge suite runs on, each from its npm package. */
export const edgeRuntimes: readonly EdgeRuntime[] = [
  {
    name: "bun",
    title: "Bun",
    entry: "example/edge/bun.ts",
    installed: join(root, "node_modules", ".bin", "bun"),
    start: (env) => spawnServer("bun", "example/edge/bun.ts", (file) => ["run", file], env),
  },
  {
    name: "deno",
    title: "Deno",
    entry: "example/edge/deno.ts",
    installed: join(root, "node_modules", ".bin", "deno"),
    start: (env) =>
      spawnServer(
        "deno",
        "example/edge/deno.ts",
        (file) => ["run", "--allow-net=127.0.0.1", "--allow-env", file],
        env,
      ),
  },
  {
    // Cloudflare's runtime, run by miniflare as `wrangler dev` does: a module
    // worker, its variables as bindings, and no nodejs_compat flag.
    name: "workerd",
    title: "Cloudflare Workers",
    entry: "example/edge/worker.ts",
    installed: join(root, "node_modules", "miniflare"),
    async start(env) {
      const { Miniflare } = await import("miniflare");
      const mf = new Miniflare({
        modules: true,
        script: await bundleEdge("example/edge/worker.ts"),
        compatibilityDate: "2026-04-01",
        compatibilityFlags: [],
        bindings: env,
      });
      const url = await mf.ready;
      return { baseUrl: url.origin, stop: () => mf.dispose() };
    },
  },
];

/**
 * The protocols a fetch-API runtime serves, with connect-web's transport for
 * each. gRPC is not one: fetch responses carry no HTTP trailers.
 */
export const edgeProtocols: readonly {
  name: "connect" | "grpc-web";
  transport: (baseUrl: string) => Transport;
}[] = [
  { name: "connect", transport: (baseUrl) => createConnectTransport({ baseUrl }) },
  { name: "grpc-web", transport: (baseUrl) => createGrpcWebTransport({ baseUrl }) },
];

/** Whether a runtime is installed; outside CI a missing one is skipped, saying why. */
export function skipUnlessInstalled(runtime: EdgeRuntime): boolean {
  const missing = !existsSync(runtime.installed);
  if (missing && process.env.CI !== "true") {
    console.log(`# skipping ${runtime.name}: ${runtime.installed} is missing (npm ci installs it)`);
  }
  return missing && process.env.CI !== "true";
}
