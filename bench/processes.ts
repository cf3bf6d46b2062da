// Child processes of the benchmark: servers under test, the Node load
// generator, and pinning them to their own CPU.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import type { LoadgenOptions, LoadgenResult } from "./loadgen.js";
import type { ServerConfig, ServerStats } from "./server.js";

/** This package's folder: child processes run in it, as its npm scripts do. */
export const benchDir = fileURLToPath(new URL(".", import.meta.url));

/** The repository's folder: the demo's .proto files are under it. */
export const repoDir = fileURLToPath(new URL("..", import.meta.url));

/**
 * Pinning: on two or more CPUs with `taskset`, servers run on CPU 0 and load
 * generators on CPU 1, so that neither steals the other's time.
 */
export const pinning = (() => {
  const taskset = ["/usr/bin/taskset", "/bin/taskset"].find((p) => existsSync(p));
  if (taskset === undefined || availableParallelism() < 2) {
    return { server: [] as string[], load: [] as string[], note: "not pinned" };
  }
  return {
    server: [taskset, "-c", "0"],
    load: [taskset, "-c", "1"],
    note: "servers pinned to CPU 0, load generators to CPU 1 (taskset)",
  };
})();

/**
 * pinThisProcess runs this script again, pinned to the servers' CPU, and exits
 * with its status; in the pinned process (or with nothing to pin) it returns.
 * In-process benchmarks run there, as the servers do, so that the thread
 * pool's crypto shares one CPU with the JavaScript around it.
 */
export function pinThisProcess(): void {
  if (pinning.server.length === 0 || process.env.CONNECT_JWT_BENCH_PINNED !== undefined) {
    return;
  }
  const [command = "", ...prefix] = pinning.server;
  const child = spawnSync(
    command,
    [...prefix, process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    { stdio: "inherit", env: { ...process.env, CONNECT_JWT_BENCH_PINNED: "1" } },
  );
  process.exit(child.status ?? 1);
}

/** node with tsx, as the npm scripts run it. */
export function nodeCommand(script: string, ...args: string[]): string[] {
  return [process.execPath, "--import", "tsx", script, ...args];
}

function spawnCommand(command: readonly string[], stdio: Parameters<typeof spawn>[2]["stdio"]) {
  const [file = "", ...args] = command;
  return spawn(file, args, { cwd: benchDir, stdio });
}

/** A server under test, running in its own process. */
export interface RunningServer {
  readonly url: string;
  stats(): Promise<ServerStats>;
  stop(): Promise<void>;
}

export async function startServer(config: ServerConfig): Promise<RunningServer> {
  const child = spawnCommand(
    [...pinning.server, ...nodeCommand("server.ts", JSON.stringify(config))],
    ["ignore", "pipe", "inherit", "ipc"],
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = /LISTENING (\d+)/.exec(out);
      if (match !== null) {
        child.stdout?.off("data", onData);
        resolve(Number(match[1]));
      }
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code) =>
      reject(new Error(`server ${JSON.stringify(config)} exited: ${code}`)),
    );
    child.once("error", reject);
  });
  child.removeAllListeners("exit");
  return {
    url: `http://127.0.0.1:${port}`,
    stats: () => ask(child),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) {
          resolve();
          return;
        }
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

function ask(child: ChildProcess): Promise<ServerStats> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type: string; stats: ServerStats }) => {
      if (message.type === "stats") {
        child.off("message", onMessage);
        resolve(message.stats);
      }
    };
    child.on("message", onMessage);
    if (!child.send({ type: "stats" })) {
      reject(new Error("server: IPC channel closed"));
    }
  });
}

/** runLoadgen runs loadgen.ts in its own (pinned) process. */
export function runLoadgen(options: LoadgenOptions): Promise<LoadgenResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCommand(
      [...pinning.load, ...nodeCommand("loadgen.ts", JSON.stringify(options))],
      ["ignore", "pipe", "inherit"],
    );
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.once("error", reject);
    child.once("exit", (code) => {
      const last = out.trim().split("\n").pop() ?? "";
      if (code !== 0) {
        reject(new Error(`loadgen exited with ${code}: ${out}`));
        return;
      }
      resolve(JSON.parse(last) as LoadgenResult);
    });
  });
}

/** runNode runs a bench script (pinned like a server) and resolves to its last stdout line. */
export function runNode(
  script: string,
  args: readonly string[],
  nodeFlags: readonly string[] = [],
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawnCommand(
      [...pinning.server, process.execPath, ...nodeFlags, "--import", "tsx", script, ...args],
      ["ignore", "pipe", "inherit"],
    );
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0
        ? resolve(out.trim().split("\n").pop() ?? "")
        : reject(new Error(`${script} exited with ${code}: ${out}`)),
    );
  });
}
