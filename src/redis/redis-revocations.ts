import type { JwtClaims } from "../core/claims.js";
import { type Duration, parseDuration } from "../core/duration.js";
import { assertKnownOptions, inOptionsOf, namesOf, type OptionNames } from "../core/options.js";
import type { Revocations } from "../core/revocations.js";
import { type RedisClient, type RedisLink, redisLink } from "./redis-link.js";

/** RedisRevocationsOptions configure {@link redisRevocations}. */
export interface RedisRevocationsOptions {
  /** A connected client of `redis` (node-redis v4 and later) or `ioredis`, created by you. */
  client: RedisClient;
  /**
   * A connected client of the same package to subscribe with. Default: a
   * duplicate of `client`, opened on `ready()` and closed by `close()`.
   */
  subscriber?: RedisClient;
  /** The pub/sub channel replicas hear revocations on. Default `"connect-jwt:revocations"`. */
  channel?: string;
  /** The prefix of the two keys the list is kept in. Default `"connect-jwt:revocations:"`. */
  prefix?: string;
  /**
   * How long the list may go without a complete load from Redis before calls
   * are refused as unavailable (`ERR_REVOCATION_UNAVAILABLE`). Default 30 s.
   */
  maxStaleness?: Duration;
  /** How often the whole list is read again, repairing a missed message. Default `maxStaleness / 3`. */
  resyncInterval?: Duration;
  /**
   * What a stale list does: `"refuse"` (the default) refuses every call as
   * unavailable; `"admit"` keeps judging tokens by the list it has, which
   * lets a token revoked meanwhile through: the weaker choice.
   */
  onStale?: "refuse" | "admit";
}

/** RedisRevocations is a revocation list shared by replicas through Redis. */
export interface RedisRevocations extends Revocations {
  /** Refuses the token with this `jti` everywhere until its `exp` (seconds since the epoch). */
  revokeToken(token: { jti: string; exp: number }): Promise<void>;
  /**
   * Refuses every token of `sub` issued (`iat`) before `before`: a `Date`, or
   * seconds since the epoch. Default now. The entry stays until replaced by a
   * later `before`.
   */
  revokeSubject(sub: string, options?: { before?: Date | number }): Promise<void>;
  /** Resolves once this replica has loaded the current list; call it before serving. */
  ready(): Promise<void>;
  /** Stops the resync and the subscription (the clients you passed stay open). */
  close(): Promise<void>;
}

const optionNames: OptionNames<RedisRevocationsOptions> = {
  client: true,
  subscriber: true,
  channel: true,
  prefix: true,
  maxStaleness: true,
  resyncInterval: true,
  onStale: true,
};

/**
 * A revoked token is kept this long past its `exp`: the verifier accepts a
 * token until `exp` plus its clock tolerance, which is at most 60 s.
 */
const expiryMarginSec = 60;

/**
 * redisRevocations keeps a revocation list in Redis (a sorted set of `jti`
 * by `exp`, one of `sub` by `before`) and a copy in each replica's memory,
 * loaded on `ready()`, kept current by pub/sub and read again every
 * `resyncInterval`. `isRevoked` is a lookup in memory. A process that only
 * revokes (an admin tool) needs no `ready()`.
 *
 * @example
 * ```ts
 * const client = await createClient({ url: process.env.REDIS_URL }).connect();
 * const revocations = redisRevocations({ client });
 * await revocations.ready();
 * const auth = createJwtAuth({ jwksUrl, issuer, audience, algorithms: ["ES256"], revocations });
 * // elsewhere, on any replica or in an admin tool:
 * await revocations.revokeToken({ jti: claims.jti, exp: claims.exp });
 * ```
 */
export function redisRevocations(options: RedisRevocationsOptions): RedisRevocations {
  const config = inOptionsOf("redisRevocations", () => checkOptions(options));
  const { link, channel, tokensKey, subjectsKey, maxStalenessMs, resyncMs, admitStale } = config;
  const tokens = new Map<string, number>();
  const subjects = new Map<string, number>();
  let loadedAt: number | undefined;
  let started: Promise<void> | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  let unsubscribe: (() => Promise<void>) | undefined;
  let closed = false;

  function addToken(jti: string, exp: number) {
    if (!(exp <= (tokens.get(jti) ?? Number.NEGATIVE_INFINITY))) {
      tokens.set(jti, exp);
    }
  }
  function addSubject(sub: string, before: number) {
    if (!(before <= (subjects.get(sub) ?? Number.NEGATIVE_INFINITY))) {
      subjects.set(sub, before);
    }
  }

  function onMessage(message: string) {
    let entry: { jti?: unknown; exp?: unknown; sub?: unknown; before?: unknown };
    try {
      entry = JSON.parse(message);
    } catch {
      return;
    }
    if (typeof entry.jti === "string" && typeof entry.exp === "number") {
      addToken(entry.jti, entry.exp);
    } else if (typeof entry.sub === "string" && typeof entry.before === "number") {
      addSubject(entry.sub, entry.before);
    }
  }

  /** Reads the whole list and merges it in: what is known here is never dropped before its expiry. */
  async function resync() {
    const sentAt = Date.now();
    const cutoff = sentAt / 1000 - expiryMarginSec;
    const [, tokenEntries, subjectEntries] = await Promise.all([
      link.command(["ZREMRANGEBYSCORE", tokensKey, "-inf", `(${cutoff}`]),
      link.command(["ZRANGE", tokensKey, "0", "-1", "WITHSCORES"]),
      link.command(["ZRANGE", subjectsKey, "0", "-1", "WITHSCORES"]),
    ]);
    for (const [jti, exp] of scoredMembers(tokenEntries)) {
      addToken(jti, exp);
    }
    for (const [sub, before] of scoredMembers(subjectEntries)) {
      addSubject(sub, before);
    }
    for (const [jti, exp] of tokens) {
      if (exp < cutoff) {
        tokens.delete(jti);
      }
    }
    loadedAt = Math.max(loadedAt ?? 0, sentAt);
  }

  function start(): Promise<void> {
    if (closed) {
      return Promise.reject(new Error("redisRevocations: closed"));
    }
    started ??= (async () => {
      // Subscribed before the first load, so that nothing revoked meanwhile is missed.
      unsubscribe = await link.subscribe(channel, onMessage, options.subscriber);
      timer = setInterval(() => {
        resync().catch(() => {});
      }, resyncMs);
      (timer as { unref?: () => void }).unref?.();
      await resync();
    })().catch((err: unknown) => {
      started = undefined;
      throw err;
    });
    return started;
  }

  async function publish(entry: object) {
    await link.command(["PUBLISH", channel, JSON.stringify(entry)]);
  }

  return {
    isRevoked(claims: JwtClaims): boolean {
      if (closed) {
        throw new Error("redisRevocations: closed");
      }
      if (started === undefined) {
        start().catch(() => {});
      }
      const now = Date.now();
      if (loadedAt === undefined) {
        throw new Error("redisRevocations: the list is not loaded yet (await ready())");
      }
      if (now - loadedAt > maxStalenessMs && !admitStale) {
        throw new Error("redisRevocations: out of touch with Redis for longer than maxStaleness");
      }
      const exp = typeof claims.jti === "string" ? tokens.get(claims.jti) : undefined;
      if (exp !== undefined && exp >= now / 1000 - expiryMarginSec) {
        return true;
      }
      const before = typeof claims.sub === "string" ? subjects.get(claims.sub) : undefined;
      return before !== undefined && !(typeof claims.iat === "number" && claims.iat >= before);
    },

    async revokeToken(token) {
      const { jti, exp } = token ?? {};
      if (typeof jti !== "string" || jti === "" || !isSeconds(exp)) {
        throw new TypeError("revokeToken takes { jti, exp }: the token's jti and exp (seconds)");
      }
      addToken(jti, exp);
      await link.command(["ZADD", tokensKey, "GT", String(exp), jti]);
      await publish({ jti, exp });
      const cutoff = Date.now() / 1000 - expiryMarginSec;
      await link.command(["ZREMRANGEBYSCORE", tokensKey, "-inf", `(${cutoff}`]);
    },

    async revokeSubject(sub, revokeOptions) {
      const given = revokeOptions?.before;
      const before =
        given === undefined
          ? Date.now() / 1000
          : given instanceof Date
            ? given.getTime() / 1000
            : given;
      if (typeof sub !== "string" || sub === "" || !isSeconds(before)) {
        throw new TypeError(
          "revokeSubject takes a sub and, if you like, { before }: a Date or seconds",
        );
      }
      addSubject(sub, before);
      await link.command(["ZADD", subjectsKey, "GT", String(before), sub]);
      await publish({ sub, before });
    },

    ready: start,

    async close() {
      closed = true;
      // A start under way finishes first, so that its subscription is undone too.
      await started?.catch(() => {});
      clearInterval(timer);
      await unsubscribe?.();
    },
  };
}

function checkOptions(options: RedisRevocationsOptions) {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("pass an options object: { client }");
  }
  assertKnownOptions(options, namesOf(optionNames));
  const link: RedisLink = redisLink(options.client, "client");
  const channel = options.channel ?? "connect-jwt:revocations";
  const prefix = options.prefix ?? "connect-jwt:revocations:";
  if (typeof channel !== "string" || channel === "") {
    throw new TypeError("channel must be a non-empty string");
  }
  if (typeof prefix !== "string") {
    throw new TypeError("prefix must be a string");
  }
  const maxStaleness = parseDuration(options.maxStaleness, "maxStaleness") ?? 30;
  const resyncInterval =
    parseDuration(options.resyncInterval, "resyncInterval") ?? maxStaleness / 3;
  if (!(maxStaleness > 0) || !(resyncInterval > 0) || resyncInterval >= maxStaleness) {
    throw new TypeError("resyncInterval must be more than 0 and less than maxStaleness");
  }
  const onStale = options.onStale ?? "refuse";
  if (onStale !== "refuse" && onStale !== "admit") {
    throw new TypeError('onStale must be "refuse" or "admit"');
  }
  return {
    link,
    channel,
    tokensKey: `${prefix}jti`,
    subjectsKey: `${prefix}sub`,
    maxStalenessMs: maxStaleness * 1000,
    resyncMs: resyncInterval * 1000,
    admitStale: onStale === "admit",
  };
}

/**
 * Whether `value` is a time in seconds since the epoch, as JWT claims give it:
 * a time in milliseconds (past the year 5000 in seconds) would keep an entry forever.
 */
function isSeconds(value: unknown): value is number {
  return typeof value === "number" && value > 0 && value < 1e11;
}

/** The members and scores of a ZRANGE WITHSCORES reply: flat (RESP2) or in pairs (RESP3). */
function scoredMembers(reply: unknown): [string, number][] {
  if (!Array.isArray(reply)) {
    return [];
  }
  const flat: unknown[] = reply.flat();
  const entries: [string, number][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const score = Number(flat[i + 1]);
    if (Number.isFinite(score)) {
      entries.push([String(flat[i]), score]);
    }
  }
  return entries;
}
