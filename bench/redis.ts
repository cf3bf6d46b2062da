// A redis-server of the benchmark's own, for the servers with revocations
// shared through Redis: on 127.0.0.1 and a free port, nothing saved to disk.
// Debian's `redis-server` package puts it at /usr/bin/redis-server;
// REDIS_SERVER_PATH names another.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { createClient } from "redis";

export interface RunningRedis {
  readonly port: number;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<RunningRedis> {
  const path = process.env.REDIS_SERVER_PATH || "/usr/bin/redis-server";
  const port = await freePort();
  const child = spawn(
    path,
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.once("error", () => {});
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    const client = createClient({ socket: { host: "127.0.0.1", port, reconnectStrategy: false } });
    client.on("error", () => {});
    try {
      await client.connect();
      await client.ping();
      client.destroy();
      return { port, stop };
    } catch (err) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await stop();
        throw new Error(`redis-server (${path}) did not start: apt-get install redis-server`, {
          cause: err,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
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
