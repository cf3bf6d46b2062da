// redisRevocations checks its options at construction, with no Redis needed:
// every mistake is a TypeError that says how to fix the call.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { type RedisRevocationsOptions, redisRevocations } from "../../src/redis/index.js";

// Never connected: construction talks to no server.
const nodeRedis = createClient({ socket: { host: "127.0.0.1", port: 1 } });
const ioredis = new Redis({ host: "127.0.0.1", port: 1, lazyConnect: true });

describe("redisRevocations options", () => {
  const cases: [string, Partial<RedisRevocationsOptions>, string][] = [
    [
      "no client",
      {},
      "redisRevocations: client must be a connected client of `redis` (createClient) or `ioredis` (new Redis())",
    ],
    [
      "a client of neither package",
      { client: { get: () => {} } },
      "redisRevocations: client must be a connected client of `redis` (createClient) or `ioredis` (new Redis())",
    ],
    [
      "a misspelt option",
      { client: nodeRedis, maxStaleneess: 5 } as never,
      "redisRevocations: unknown option `maxStaleneess`; did you mean `maxStaleness`?",
    ],
    [
      "a resync no more often than the staleness bound",
      { client: ioredis, maxStaleness: 5, resyncInterval: 5 },
      "redisRevocations: resyncInterval must be more than 0 and less than maxStaleness",
    ],
    [
      "an onStale of neither kind",
      { client: ioredis, onStale: "ignore" as never },
      'redisRevocations: onStale must be "refuse" or "admit"',
    ],
    [
      "an empty channel",
      { client: nodeRedis, channel: "" },
      "redisRevocations: channel must be a non-empty string",
    ],
  ];
  for (const [name, options, message] of cases) {
    test(name, () => {
      assert.throws(
        () => redisRevocations(options as RedisRevocationsOptions),
        new TypeError(message),
      );
    });
  }

  for (const [kind, client] of [
    ["redis", nodeRedis],
    ["ioredis", ioredis],
  ] as const) {
    test(`a ${kind} client is accepted, and revoking checks its arguments`, async () => {
      const revocations = redisRevocations({ client });
      await assert.rejects(
        revocations.revokeToken({ jti: "", exp: 1 }),
        new TypeError("revokeToken takes { jti, exp }: the token's jti and exp (seconds)"),
      );
      await assert.rejects(
        revocations.revokeToken({ jti: "a-jti", exp: Date.now() }),
        new TypeError("revokeToken takes { jti, exp }: the token's jti and exp (seconds)"),
      );
      await assert.rejects(
        revocations.revokeSubject("", {}),
        new TypeError("revokeSubject takes a sub and, if you like, { before }: a Date or seconds"),
      );
      await revocations.close();
    });
  }
});
