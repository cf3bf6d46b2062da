import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { createClient } from "redis";

/** Where Debian's `redis-server` package puts the server (`REDIS_SERVER_PATH` names another). */
export const redisServerPath = process.env.REDIS_SERVER_PATH || "/usr/bin/redis-server";

/**
 * redisSkip is the reason to skip the Redis tests, for `describe(name, {
 * skip }, ...)`: redis-server is not installed. Under `CI=true` it is
 * `undefined` even then, so the tests run and fail in {@link startRedisServer}.
 */
export function redisSkip(): string | undefined {
  if (isInstalled() || process.env.CI === "true") {
    return undefined;
  }
  return `redis-server not installed at ${redisServerPath}: apt-get install redis-server`;
}

/**
 * A redis-server of the test's own, on 127.0.0.1 and a free port, in a
 * temporary folder of its own; nothing saved to disk unless `appendOnly`.
 */
export interface RedisServer {
  readonly port: number;
  /** Stops the process answering (SIGSTOP): connections stay open, commands get no reply. */
  pause(): void;
  /** Lets it answer again (SIGCONT). */
  resume(): void;
  /**
   * Kills it (SIGKILL) and starts it again on the same port. It comes back
   * with its data if it keeps an append-only file, unless `keepData: false`
   * deletes the file first; without one it comes back empty.
   */
  restart(options?: { keepData?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /**
   * Keep the data in an append-only file (AOF), written to disk before each
   * write is answered (`appendfsync always`), so that a restart finds it.
   * Default false: nothing is saved.
   */
  appendOnly?: boolean;
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  if (!isInstalled()) {
    throw new Error(
      `redis-server not installed at ${redisServerPath} (CI=true: the Redis tests must run): apt-get install redis-server`,
    );
  }
  const dir = await mkdtemp(join(tmpdir(), "connect-jwt-redis-"));
  const port = await freePort();
  const appendOnly = options.appendOnly === true;
  let running: Running;
  try {
    running = await spawnServer(port, dir, appendOnly);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    pause: () => running.child.kill("SIGSTOP"),
    resume: () => running.child.kill("SIGCONT"),
    async restart(restartOptions = {}) {
      await running.kill();
      if (restartOptions.keepData === false) {
        await rm(dir, { recursive: true, force: true });
        await mkdir(dir);
      }
      running = await spawnServer(port, dir, appendOnly);
    },
    async stop() {
      await running.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

interface Running {
  readonly child: ChildProcess;
  kill(): Promise<void>;
}

/** Starts redis-server on `port`, in `dir`, and waits until it answers PING. */
async function spawnServer(port: number, dir: string, appendOnly: boolean): Promise<Running> {
  const persistence = appendOnly
    ? ["--appendonly", "yes", "--appendfsync", "always"]
    : ["--appendonly", "no"];
  const child = spawn(
    redisServerPath,
    ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", ...persistence],
    { cwd: dir, stdio: ["ignore", "ignore", "pipe"] },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGCONT");
      child.kill("SIGKILL");
      await exited;
    }
  };
  try {
    await waitForPong(port, child);
  } catch (err) {
    await kill();
    throw err;
  }
  return { child, kill };
}

/** The two clients redisRevocations works with. */
export type ClientKind = "redis" | "ioredis";
export const clientKinds: readonly ClientKind[] = ["redis", "ioredis"];

/** A connected client of either package, and how to close it. */
export async function connectClient(kind: ClientKind, port: number): Promise<ConnectedClient> {
  if (kind === "ioredis") {
    const client = new Redis({ host: "127.0.0.1", port, lazyConnect: true });
    client.on("error", () => {});
    await client.connect();
    return {
      client,
      command: ([name = "", ...args]) => client.call(name, ...args),
      close: async () => client.disconnect(),
    };
  }
  const client = createClient({ socket: { host: "127.0.0.1", port } });
  client.on("error", () => {});
  await client.connect();
  return {
    client,
    command: (args) => client.sendCommand([...args]),
    close: async () => client.destroy(),
  };
}

/** A connected client, a way to run a raw command on it, and how to close it. */
export interface ConnectedClient {
  readonly client: object;
  command(args: readonly string[]): Promise<unknown>;
  close(): Promise<void>;
}

/** Waits, up to `limitMs`, until `condition` holds. */
export async function eventually(condition: () => boolean, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${limitMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function isInstalled(): boolean {
  try {
    accessSync(redisServerPath, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** Sends PING until the server answers PONG, for at most 10 seconds. */
async function waitForPong(port: number, child: ChildProcess): Promise<void> {
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr += String(chunk);
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`redis-server exited with ${child.exitCode}: ${stderr}`);
    }
    if (await pong(port)) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within 10 s: ${stderr}`);
}

function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let reply = "";
    socket.setTimeout(1000, () => socket.destroy());
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += String(chunk);
      if (reply.includes("\r\n")) {
        socket.end();
        resolve(reply.startsWith("+PONG"));
      }
    });
    socket.on("error", () => resolve(false));
    socket.on("close", () => resolve(reply.startsWith("+PONG")));
  });
}
