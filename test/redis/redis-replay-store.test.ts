// redisReplayStore against a real redis-server of the test's own, with both
// clients it supports: a proof is used once across replicas, its key expires
// with the proof, a SET re-sent after its reply was lost is still a first
// use, and a Redis that does not answer refuses as unavailable.
import assert from "node:assert/strict";
import { createConnection, createServer, type Socket } from "node:net";
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

/**
 * A TCP proxy to the Redis on `port` that, once armed, loses Redis's next
 * reply: it closes both connections instead of passing it on, as when a
 * Redis is killed between applying a command and answering it.
 */
async function replyLosingProxy(port: number) {
  let armed = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port });
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", close);
      socket.on("close", close);
    }
    client.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => {
      if (armed) {
        armed = false;
        close();
      } else {
        client.write(chunk);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert.ok(typeof address === "object" && address !== null);
  return {
    port: address.port,
    arm: () => {
      armed = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) {
          socket.destroy();
        }
        server.close(() => resolve());
      }),
  };
}

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

    test("a SET Redis applied but whose reply was lost is a first use when the client re-sends it", async () => {
      const proxy = await replyLosingProxy(redis.port);
      const through = await connectClient(kind, proxy.port);
      try {
        const store = redisReplayStore({ client: through.client, prefix: "lost:", timeout: 5 });
        const expiresAt = nowSec() + 300;
        proxy.arm();
        const first = await Promise.resolve(store.use("k", expiresAt)).then(
          (used) => used,
          () => "unavailable",
        );
        assert.equal(await connected.command(["EXISTS", "lost:k"]), 1, "Redis applied the SET");
        // ioredis re-sends the unanswered SET once it has reconnected: the key
        // is there, with this use's own value, and that is no replay. node-redis
        // rejects the command instead: unavailable. Never refused as a replay.
        assert.equal(first, kind === "ioredis" ? true : "unavailable");
        assert.equal(await store.use("k", expiresAt), false, "a second use is a replay");
      } finally {
        await through.close();
        await proxy.close();
      }
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
