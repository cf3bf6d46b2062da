// Replicas of a server sharing a revocation list and a DPoP replay store
// through one Redis, each a
// process of its own running test/helpers/replica-server.ts, and the calls a
// test makes to them.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import type { JWK } from "jose";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import type { ClientKind } from "./redis-server.js";
import type { TransportKind } from "./server.js";

/** What a replica is started with. */
export interface ReplicaConfig {
  readonly kind: ClientKind;
  readonly redisPort: number;
  /** The public key the replica verifies tokens with. */
  readonly publicJwk: JWK;
  readonly channel: string;
  readonly prefix: string;
  /** Seconds; the default of redisRevocations when absent. */
  readonly maxStaleness?: number;
  /** The replay store's timeout, seconds; the default of redisReplayStore when absent. */
  readonly dpopTimeout?: number;
  /** DPoP's proofMaxAge, seconds; the default of createJwtAuth when absent. */
  readonly proofMaxAge?: number;
}

/** The wall-clock time in milliseconds, with the fraction of the process's monotonic clock. */
export const wallClockMs = () => performance.timeOrigin + performance.now();

const root = fileURLToPath(new URL("../..", import.meta.url));
const script = fileURLToPath(new URL("./replica-server.ts", import.meta.url));

/** A replica running in its own process. */
export interface Replica {
  readonly url: string;
  /** A client of the replica over `transport` (one per transport, kept). */
  client(transport: TransportKind): Client<typeof DemoService>;
  /** Revokes through this replica; resolves to the wall-clock time (ms) its revocation resolved. */
  revoke(what: { jti: string; exp: number } | { sub: string }): Promise<number>;
  /** How many calls the replica refused so far, by reason (`onDenied`). */
  denials(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

/** startReplica starts a replica with the pinned node and tsx and waits until it listens. */
/**
 * startReplicas starts `count` replicas with one config; if one fails to
 * start, it stops those that did and throws.
 */
export async function startReplicas(count: number, config: ReplicaConfig): Promise<Replica[]> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, () => startReplica(config)),
  );
  const replicas = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = started.find((r) => r.status === "rejected");
  if (failed !== undefined) {
    await Promise.all(replicas.map((replica) => replica.stop()));
    throw failed.reason;
  }
  return replicas;
}

export async function startReplica(config: ReplicaConfig): Promise<Replica> {
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", script, JSON.stringify(config)],
    { cwd: root, stdio: ["pipe", "pipe", "pipe"] },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stdout = "";
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /LISTENING (\d+)/.exec(stdout);
      if (match?.[1] !== undefined) {
        resolve(match[1]);
      }
    });
    exited.then(() => reject(new Error(`a replica exited: ${stdout}${stderr}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  const clients = new Map<string, Client<typeof DemoService>>();
  return {
    url,
    client(transport) {
      let client = clients.get(transport.name);
      if (client === undefined) {
        const options = { baseUrl: url, httpVersion: transport.httpVersion } as const;
        const create = {
          connect: createConnectTransport,
          grpc: createGrpcTransport,
          "grpc-web": createGrpcWebTransport,
        }[transport.protocol];
        client = createClient(DemoService, create(options));
        clients.set(transport.name, client);
      }
      return client;
    },
    async revoke(what) {
      const res = await fetch(`${url}/test-admin/revoke`, {
        method: "POST",
        body: JSON.stringify(what),
      });
      if (!res.ok) {
        throw new Error(`revoking through a replica failed: ${await res.text()}`);
      }
      return ((await res.json()) as { revokedAt: number }).revokedAt;
    },
    async denials() {
      const res = await fetch(`${url}/test-admin/denials`);
      if (!res.ok) {
        throw new Error(`reading a replica's denials failed: ${await res.text()}`);
      }
      return (await res.json()) as Record<string, number>;
    },
    async stop() {
      child.stdin?.end();
      const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** What a replica decided on a call: admitted, refused as revoked or invalid, or unavailable. */
export type Decision = "admitted" | "refused" | "unavailable" | `code ${number}`;

/**
 * decide makes one unary call with `token` as a Bearer token, or with the
 * given headers (a DPoP call), and tells the replica's decision; it never throws.
 */
export async function decide(
  client: Client<typeof DemoService>,
  credentials: string | Record<string, string>,
  timeoutMs = 10_000,
): Promise<Decision> {
  const headers =
    typeof credentials === "string" ? { authorization: `Bearer ${credentials}` } : credentials;
  try {
    await client.whoAmI({}, { headers, timeoutMs });
    return "admitted";
  } catch (err) {
    const { code, rawMessage } = ConnectError.from(err);
    if (code === Code.PermissionDenied) {
      return "refused";
    }
    // Only an unavailable revocation list or replay store, not a connection the replica failed to answer.
    return code === Code.Unavailable && rawMessage === "authentication unavailable"
      ? "unavailable"
      : `code ${code}`;
  }
}

/** percentile of an ascending list, nearest rank. */
export function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
}
