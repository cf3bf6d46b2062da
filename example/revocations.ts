// The demo's revocation list, and its record of used DPoP proofs: shared
// through Redis when `REDIS_URL` is set (so that several demo processes refuse
// what any of them revoked, and a proof replayed to any of them), else in this
// process's memory. Either way createJwtAuth asks the list on every call and
// `POST /demo/revoke` adds to it.
import { createClient } from "redis";
import {
  type DpopReplayStore,
  type JwtClaims,
  memoryReplayStore,
  type Revocations,
} from "../src/index.js";
import { redisReplayStore, redisRevocations } from "../src/redis/index.js";

/** DemoRevocations is the list the demo checks and `POST /demo/revoke` adds to. */
export interface DemoRevocations extends Revocations {
  /** `"redis"` with `REDIS_URL`, else `"memory"`. */
  readonly kind: "redis" | "memory";
  /** Where used DPoP proofs are recorded: the same Redis, or this process's memory. */
  readonly replayStore: DpopReplayStore;
  /** Refuses the token with this `jti` until `exp` (seconds since the epoch). */
  revokeToken(token: { jti: string; exp: number }): Promise<void>;
  /** Refuses every token of `sub` issued before now. */
  revokeSubject(sub: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * RevocationsFullError is a revocation refused because the in-memory list of
 * the demo holds as many entries as it may.
 */
export class RevocationsFullError extends Error {
  override readonly name = "RevocationsFullError";
}

/**
 * demoRevocations connects to `redisUrl` (node-redis) and loads the shared
 * list, or without it keeps a list in memory.
 *
 * @example
 * ```ts
 * const revocations = await demoRevocations(process.env.REDIS_URL);
 * const auth = createJwtAuth({ ...keys, revocations });
 * ```
 */
export async function demoRevocations(redisUrl?: string): Promise<DemoRevocations> {
  if (redisUrl === undefined) {
    return memoryRevocations();
  }
  const client = createClient({ url: redisUrl });
  // Reconnections show as staleness (calls refused Unavailable), not as a crash.
  client.on("error", () => {});
  // node-redis retries a first connection forever: give up, so that the demo says why.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const giveUp = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`cannot reach REDIS_URL within ${connectSeconds} s`)),
      connectSeconds * 1000,
    );
  });
  try {
    await Promise.race([client.connect(), giveUp]);
  } catch (err) {
    client.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const list = redisRevocations({ client });
  try {
    await list.ready();
  } catch (err) {
    await list.close();
    client.destroy();
    throw err;
  }
  return {
    kind: "redis",
    replayStore: redisReplayStore({ client }),
    isRevoked: (claims) => list.isRevoked(claims),
    revokeToken: (token) => list.revokeToken(token),
    revokeSubject: (sub) => list.revokeSubject(sub),
    async close() {
      await list.close();
      client.destroy();
    },
  };
}

/** How long the demo waits for Redis at start. */
const connectSeconds = 5;

/** The most entries of each kind the in-memory list holds: anyone may revoke on the demo. */
export const maxMemoryEntries = 10_000;

/** The same rules as redisRevocations, for one process. */
function memoryRevocations(): DemoRevocations {
  const tokens = new Map<string, number>();
  const subjects = new Map<string, number>();
  const nowSec = () => Date.now() / 1000;
  // As redisRevocations: kept 60 s past exp, the most clock tolerance allows.
  const dropExpired = () => {
    for (const [jti, exp] of tokens) {
      if (exp < nowSec() - 60) {
        tokens.delete(jti);
      }
    }
  };
  const add = (map: Map<string, number>, key: string, value: number) => {
    if (!map.has(key) && map.size >= maxMemoryEntries) {
      throw new RevocationsFullError("the demo's revocation list is full");
    }
    map.set(key, Math.max(value, map.get(key) ?? value));
  };
  return {
    kind: "memory",
    replayStore: memoryReplayStore({ maxEntries: 100_000 }),
    isRevoked(claims: JwtClaims) {
      const exp = typeof claims.jti === "string" ? tokens.get(claims.jti) : undefined;
      if (exp !== undefined && exp >= nowSec() - 60) {
        return true;
      }
      const before = typeof claims.sub === "string" ? subjects.get(claims.sub) : undefined;
      return before !== undefined && !(typeof claims.iat === "number" && claims.iat >= before);
    },
    async revokeToken({ jti, exp }) {
      dropExpired();
      add(tokens, jti, exp);
    },
    async revokeSubject(sub) {
      add(subjects, sub, nowSec());
    },
    async close() {},
  };
}
