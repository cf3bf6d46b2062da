import { type Duration, parseDuration } from "../core/duration.js";
import { assertKnownOptions, inOptionsOf, namesOf, type OptionNames } from "../core/options.js";
import type { DpopReplayStore } from "../core/replay-store.js";
import { type RedisClient, redisLink } from "./redis-link.js";

/** RedisReplayStoreOptions configure {@link redisReplayStore}. */
export interface RedisReplayStoreOptions {
  /** A connected client of `redis` (node-redis v4 and later) or `ioredis`, created by you. */
  client: RedisClient;
  /** The prefix of the keys used proofs are kept under. Default `"connect-jwt:dpop:"`. */
  prefix?: string;
  /**
   * How long a proof waits for Redis before the call is refused as
   * unavailable (`ERR_DPOP_REPLAY_UNAVAILABLE`). Default `1` (second).
   */
  timeout?: Duration;
}

const optionNames: OptionNames<RedisReplayStoreOptions> = {
  client: true,
  prefix: true,
  timeout: true,
};

/**
 * redisReplayStore is a {@link DpopReplayStore} shared by every replica that
 * uses the same Redis: a proof accepted by one is refused when replayed to
 * another. One atomic `SET key <random> NX EXAT <expiresAt>` per proof; Redis
 * drops the key when the proof would be too old anyway. A `SET` refused as
 * already there is followed by a `GET`: the key holding this very use's
 * random value means the client re-sent a `SET` Redis had applied before a
 * reconnection (ioredis does), a first use, not a replay. When Redis fails or
 * does not answer within `timeout`, the call is refused as unavailable, never
 * admitted. Needs Redis 6.2 or later (or Valkey).
 *
 * @example
 * ```ts
 * const client = await createClient({ url: process.env.REDIS_URL }).connect();
 * const auth = createJwtAuth({
 *   jwksUrl, issuer, audience, algorithms: ["ES256"],
 *   dpop: { origins: ["https://api.example.com"], replayStore: redisReplayStore({ client }) },
 * });
 * ```
 */
export function redisReplayStore(options: RedisReplayStoreOptions): DpopReplayStore {
  return inOptionsOf("redisReplayStore", () => {
    if (typeof options !== "object" || options === null) {
      throw new TypeError("pass an options object with a connected client: { client }");
    }
    assertKnownOptions(options, namesOf(optionNames));
    const link = redisLink(options.client, "client");
    const prefix = options.prefix ?? "connect-jwt:dpop:";
    if (typeof prefix !== "string") {
      throw new TypeError("prefix must be a string");
    }
    const timeoutMs = (parseDuration(options.timeout, "timeout") ?? 1) * 1000;
    if (timeoutMs <= 0) {
      throw new TypeError("timeout must be more than 0 seconds");
    }
    /** Whether this is the first use of `key`; see redisReplayStore. */
    async function firstUse(key: string, expiresAt: number): Promise<boolean> {
      const value = crypto.randomUUID();
      const args = ["SET", key, value, "NX", "EXAT", String(expiresAt)];
      // "OK" when the key was set; null when it was there already.
      if ((await link.command(args)) === "OK") {
        return true;
      }
      return (await link.command(["GET", key])) === value;
    }
    return {
      use(key, expiresAt) {
        return withTimeout(firstUse(`${prefix}${key}`, expiresAt), timeoutMs);
      },
    };
  });
}

/** `promise`, or a rejection once `ms` have passed. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
