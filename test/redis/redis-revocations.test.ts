// redisRevocations against a real redis-server of the test's own, with both
// clients it supports: revocations refused on every transport, shared by two
// replicas and an admin-only process, dropped after their exp, and calls
// refused as unavailable while Redis is out of reach for longer than
// maxStaleness, or after a restart that lost the list.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import type { JwtAuthOptions, JwtClaims, Revocations } from "../../src/index.js";
import { type RedisRevocationsOptions, redisRevocations } from "../../src/redis/index.js";
import { audience, generateTestKey, issuer, mint } from "../helpers/fixtures.js";
import {
  type ClientKind,
  type ConnectedClient,
  clientKinds,
  connectClient,
  eventually,
  type RedisServer,
  redisSkip,
  startRedisServer,
} from "../helpers/redis-server.js";
import {
  call,
  callKinds,
  gateAndInterceptor,
  startServer,
  type TestServer,
  transports,
} from "../helpers/server.js";

const skip = redisSkip();
if (skip !== undefined) {
  console.log(`skipping the Redis tests: ${skip}`);
}

const es256 = await generateTestKey("ES256");
const authOptions: JwtAuthOptions = { jwks: { keys: [es256.publicJwk] }, issuer, audience };
const nowSec = () => Math.floor(Date.now() / 1000);
const bearer = (token: string) => `Bearer ${token}`;

/** What isRevoked answers, or "unavailable" when it throws. */
function judge(revocations: Revocations, claims: JwtClaims): boolean | "unavailable" {
  try {
    return revocations.isRevoked(claims);
  } catch {
    return "unavailable";
  }
}

let unique = 0;

for (const kind of clientKinds) {
  describe(`redisRevocations with ${kind}`, { skip }, () => {
    let redis: RedisServer;
    const cleanups: (() => Promise<void>)[] = [];
    before(async () => {
      redis = await startRedisServer();
    });
    after(async () => {
      for (const cleanup of cleanups.reverse()) {
        await cleanup().catch(() => {});
      }
      await redis?.stop();
    });

    async function client(): Promise<ConnectedClient> {
      const connected = await connectClient(kind satisfies ClientKind, redis.port);
      cleanups.push(() => connected.close());
      return connected;
    }

    /** A fresh list (its own keys and channel) and a function making instances of it. */
    function list(shared: Partial<RedisRevocationsOptions> = {}) {
      const name = `test-${kind}-${++unique}`;
      const keys = { channel: `${name}:channel`, prefix: `${name}:` };
      return async (options: Partial<RedisRevocationsOptions> = {}) => {
        const revocations = redisRevocations({
          client: (await client()).client,
          ...keys,
          ...shared,
          ...options,
        });
        cleanups.push(() => revocations.close());
        return { revocations, keys };
      };
    }

    async function server(revocations: Revocations): Promise<TestServer> {
      const started = await startServer(gateAndInterceptor({ ...authOptions, revocations }));
      cleanups.push(() => started.close());
      return started;
    }

    test("a revoked token and a revoked subject are refused on every transport", async () => {
      const { revocations } = await list()();
      await revocations.ready();
      const running = await server(revocations);
      const byJti = await mint(es256, { claims: { sub: "user-jti", jti: "jti-transport-1" } });
      const bySub = await mint(es256, { claims: { sub: "user-sub" } });
      const newer = await mint(es256, { claims: { sub: "user-newer" } });
      for (const transport of transports) {
        const outcome = await call(running.client(transport), "unary", bearer(byJti));
        assert.deepEqual(outcome, { ok: true, subject: "user-jti" }, transport.name);
      }
      await revocations.revokeToken({ jti: "jti-transport-1", exp: nowSec() + 300 });
      await revocations.revokeSubject("user-sub");
      await revocations.revokeSubject("user-newer", { before: nowSec() - 100 });
      for (const transport of transports) {
        for (const kindOfCall of callKinds(transport)) {
          for (const token of [byJti, bySub]) {
            const outcome = await call(running.client(transport), kindOfCall, bearer(token));
            assert.equal(outcome.ok, false, `${transport.name} ${kindOfCall}`);
            assert.equal(!outcome.ok && outcome.error.code, Code.PermissionDenied);
            assert.equal(!outcome.ok && outcome.error.rawMessage, "invalid token");
          }
          // Issued after the subject's `before`: admitted.
          const outcome = await call(running.client(transport), kindOfCall, bearer(newer));
          assert.deepEqual(outcome, { ok: true, subject: "user-newer" });
        }
      }
    });

    test("two replicas and an admin-only process: a revocation through any reaches both replicas", async () => {
      const instance = list();
      const { revocations: one } = await instance();
      const { revocations: two } = await instance();
      const { revocations: admin } = await instance();
      await Promise.all([one.ready(), two.ready()]);
      const replicas = [one, two];
      const exp = nowSec() + 300;
      const tokenOf = (jti: string): JwtClaims => ({ jti, sub: "someone", iat: nowSec(), exp });
      for (const replica of replicas) {
        assert.equal(judge(replica, tokenOf("by-admin")), false);
      }
      // The admin instance never called ready(): revoking needs none.
      await admin.revokeToken({ jti: "by-admin", exp });
      await one.revokeToken({ jti: "by-one", exp });
      await two.revokeSubject("subject-by-two");
      for (const replica of replicas) {
        await eventually(() => judge(replica, tokenOf("by-admin")) === true);
        await eventually(() => judge(replica, tokenOf("by-one")) === true);
        await eventually(
          () => judge(replica, { sub: "subject-by-two", iat: nowSec() - 1, exp }) === true,
        );
        assert.equal(judge(replica, tokenOf("not-revoked")), false);
        assert.equal(judge(replica, { sub: "someone-else", iat: nowSec() - 1, exp }), false);
      }
    });

    test("a revocation written without its message reaches the replicas by the resync", async () => {
      const instance = list({ maxStaleness: 2 });
      const { revocations, keys } = await instance();
      await revocations.ready();
      const raw = await client();
      const exp = nowSec() + 300;
      await raw.command(["ZADD", `${keys.prefix}jti`, String(exp), "written-directly"]);
      await eventually(() => judge(revocations, { jti: "written-directly", exp }) === true);
    });

    test("an entry is dropped after its exp and the 60 s margin of clock tolerance", async () => {
      const instance = list({ maxStaleness: 1 });
      const { revocations, keys } = await instance();
      const { revocations: admin } = await instance();
      await revocations.ready();
      // Expired 59 s ago: still refused (a verifier may accept it for up to 60 s more).
      const exp = nowSec() - 59;
      await admin.revokeToken({ jti: "about-to-go", exp });
      await eventually(() => judge(revocations, { jti: "about-to-go", exp }) === true);
      const raw = await client();
      assert.notEqual(await raw.command(["ZSCORE", `${keys.prefix}jti`, "about-to-go"]), null);
      await eventually(() => judge(revocations, { jti: "about-to-go", exp }) === false);
      let score: unknown = "";
      await eventually(() => {
        raw.command(["ZSCORE", `${keys.prefix}jti`, "about-to-go"]).then((s) => {
          score = s;
        });
        return score === null;
      });
    });

    test("before ready() the list is unavailable; out of touch past maxStaleness, calls are refused Unavailable until Redis answers again", async () => {
      const { revocations } = await list({ maxStaleness: 1 })();
      assert.equal(judge(revocations, { sub: "x" }), "unavailable");
      await revocations.ready();
      const running = await server(revocations);
      const token = await mint(es256, { claims: { sub: "user-stale" } });
      const reachable = async () => {
        for (const transport of transports) {
          const outcome = await call(running.client(transport), "unary", bearer(token));
          assert.deepEqual(outcome, { ok: true, subject: "user-stale" }, transport.name);
        }
      };
      await reachable();
      redis.pause();
      try {
        await eventually(() => judge(revocations, { sub: "x" }) === "unavailable");
        for (const transport of transports) {
          const outcome = await call(running.client(transport), "unary", bearer(token));
          assert.equal(outcome.ok, false, transport.name);
          assert.equal(!outcome.ok && outcome.error.code, Code.Unavailable);
          assert.equal(!outcome.ok && outcome.error.rawMessage, "authentication unavailable");
        }
      } finally {
        redis.resume();
      }
      await eventually(() => judge(revocations, { sub: "x" }) === false);
      await reachable();
    });

    test("a Redis restarted empty: the replica keeps what it knew, and is back in touch", async () => {
      const { revocations, keys } = await list({ maxStaleness: 1 })();
      await revocations.ready();
      const exp = nowSec() + 300;
      await revocations.revokeToken({ jti: "known-before-restart", exp });
      await revocations.revokeSubject("subject-before-restart");
      await redis.restart();
      // The new Redis is empty; an entry written there shows the replica loads from it again.
      const raw = await client();
      await raw.command(["ZADD", `${keys.prefix}jti`, String(exp), "written-after-restart"]);
      await eventually(() => judge(revocations, { jti: "written-after-restart", exp }) === true);
      assert.equal(judge(revocations, { jti: "known-before-restart", exp }), true);
      assert.equal(judge(revocations, { sub: "subject-before-restart", iat: 1, exp }), true);
    });

    test('onStale: "admit" keeps judging by the list it has while out of touch', async () => {
      const { revocations } = await list({ maxStaleness: 1, onStale: "admit" })();
      await revocations.ready();
      await revocations.revokeToken({ jti: "known-before", exp: nowSec() + 300 });
      const { revocations: strict } = await list({ maxStaleness: 1 })();
      await strict.ready();
      redis.pause();
      try {
        // The strict list tells when more than maxStaleness has passed without a load.
        await eventually(() => judge(strict, { sub: "x" }) === "unavailable");
        assert.equal(judge(revocations, { jti: "known-before", exp: nowSec() + 300 }), true);
        assert.equal(judge(revocations, { jti: "other", exp: nowSec() + 300 }), false);
      } finally {
        redis.resume();
      }
    });
  });
}
