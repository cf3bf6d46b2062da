// redisReplayStore against a real redis-server of the test's own, with both
// clients it supports: a proof is used once across replicas, its key expires
// with the proof, and a Redis that does not answer refuses as unavailable.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import type { AuthErrorCode, DeniedEvent } from "../../src/index.js";
import { redisReplayStore } from "../../src/redis/index.js";
import {
  cnfOf,
  dpopHeaders,
  generateDpopKey,
  htuOf,
  makeProof,
  publicOrigin,
} from "../helpers/dpop.js";
import { audience, generateTestKey, issuer, mint } from "../helpers/fixtures.js";
import {
  type ConnectedClient,
  clientKinds,
  connectClient,
  type RedisServer,
  redisSkip,
  startRedisServer,
} from "../helpers/redis-server.js";
import {
  call,
  gateAndInterceptor,
  startServer,
  type TestServer,
  transports,
} from "../helpers/server.js";

const skip = redisSkip();
if (skip !== undefined) {
  console.log(`skipping the Redis replay store tests: ${skip}`);
}

const es256 = await generateTestKey("ES256");
const nowSec = () => Math.floor(Date.now() / 1000);

for (const kind of clientKinds) {
  describe(`redisReplayStore with ${kind}`, { skip }, () => {
    let redis: RedisServer;
    let connected: ConnectedClient;
    const replicas: TestServer[] = [];
    const clients: ConnectedClient[] = [];
    const reasons: AuthErrorCode[] = [];
    before(async () => {
      redis = await startRedisServer();
      connected = await connectClient(kind, redis.port);
      // Two replicas, each with a client of its own, one Redis.
      for (let i = 0; i < 2; i++) {
        const own = await connectClient(kind, redis.port);
        replicas.push(
          await startServer(
            gateAndInterceptor({
              jwks: { keys: [es256.publicJwk] },
              issuer,
              audience,
              dpop: {
                origins: [publicOrigin],
                replayStore: redisReplayStore({ client: own.client, timeout: 0.3 }),
              },
              onDenied: (event: DeniedEvent) => reasons.push(event.reason),
            }),
          ),
        );
        clients.push(own);
      }
    });
    after(async () => {
      await Promise.all(replicas.map((r) => r.close()));
      await Promise.all(clients.map((c) => c.close()));
      await connected?.close();
      await redis?.stop();
    });

    test("a key is used once, and Redis drops it when the proof expires", async () => {
      const store = redisReplayStore({ client: connected.client, prefix: "t:" });
      const expiresAt = nowSec() + 300;
      assert.equal(await store.use("k1", expiresAt), true);
      assert.equal(await store.use("k1", expiresAt), false);
      assert.equal(await store.use("k2", expiresAt), true);
      assert.equal(Number(await connected.command(["EXPIRETIME", "t:k1"])), expiresAt);
    });

    for (const transport of transports) {
      test(`${transport.name}: a proof accepted by one replica is refused by the other`, async () => {
        const key = await generateDpopKey();
        const token = await mint(es256, { claims: { ...cnfOf(key), sub: "replayed" } });
        const headers = dpopHeaders(token, await makeProof(key, { token, htu: htuOf("unary") }));
        const [a, b] = replicas as [TestServer, TestServer];
        assert.deepEqual(await call(a.client(transport), "unary", headers), {
          ok: true,
          subject: "replayed",
        });
        reasons.length = 0;
        const replayed = await call(b.client(transport), "unary", headers);
        assert.equal(replayed.ok, false);
        assert.deepEqual(reasons, ["ERR_DPOP_REPLAYED"]);
      });
    }

    test("Redis paused: refused as unavailable within the timeout, never admitted; resumed: admitted", async () => {
      const key = await generateDpopKey();
      const token = await mint(es256, { claims: { ...cnfOf(key), sub: "paused" } });
      const client = (replicas[0] as TestServer).client(transports[0] as (typeof transports)[0]);
      redis.pause();
      try {
        reasons.length = 0;
        const started = Date.now();
        const outcome = await call(
          client,
          "unary",
          dpopHeaders(token, await makeProof(key, { token })),
        );
        assert.equal(outcome.ok, false);
        if (!outcome.ok) {
          assert.equal(outcome.error.code, Code.Unavailable);
        }
        assert.deepEqual(reasons, ["ERR_DPOP_REPLAY_UNAVAILABLE"]);
        assert.ok(Date.now() - started < 5000, "refused after the timeout, not hung");
      } finally {
        redis.resume();
      }
      const outcome = await call(
        client,
        "unary",
        dpopHeaders(token, await makeProof(key, { token })),
      );
      assert.deepEqual(outcome, { ok: true, subject: "paused" });
    });

    test("options are checked", () => {
      assert.throws(() => redisReplayStore({ client: {} }), /redisReplayStore: client must be/);
      assert.throws(
        () => redisReplayStore({ client: connected.client, timeout: 0 }),
        /timeout must be more than 0/,
      );
      assert.throws(
        () => redisReplayStore({ client: connected.client, prefx: "x" } as never),
        /unknown option `prefx`; did you mean `prefix`/,
      );
    });
  });
}
