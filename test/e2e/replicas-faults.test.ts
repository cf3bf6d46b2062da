// Three server processes sharing one redis-server (with an append-only file),
// under a load of mixed calls, valid and revoked tokens on every protocol,
// while Redis fails: paused (SIGSTOP) past maxStaleness, resumed, restarted
// with its data, restarted without it. Every decision is counted: a revoked
// token admitted, or a valid one refused with anything but Unavailable, is a
// wrong decision, and there must be none over the whole run.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type RedisRevocations, redisRevocations } from "../../src/redis/index.js";
import { generateTestKey, mint } from "../helpers/fixtures.js";
import {
  type ClientKind,
  type ConnectedClient,
  clientKinds,
  connectClient,
  type RedisServer,
  redisSkip,
  startRedisServer,
} from "../helpers/redis-server.js";
import { type Decision, decide, type Replica, startReplica } from "../helpers/replicas.js";
import { type TransportKind, transports } from "../helpers/server.js";

const skip = redisSkip();
if (skip !== undefined) {
  console.log(`skipping the replica fault tests: ${skip}`);
}

/** Small, so that a pause outlasts it in a test; resyncs every 2/3 s. */
const maxStalenessSec = 2;
const es256 = await generateTestKey("ES256");
const nowSec = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The transports in turn: Connect, gRPC and gRPC-Web over HTTP/1.1 and HTTP/2. */
function transportAt(i: number): TransportKind {
  const transport = transports[i % transports.length];
  assert.ok(transport);
  return transport;
}

/** A token of the load, and whether it is revoked on every replica. */
interface LoadToken {
  readonly token: string;
  readonly revoked: boolean;
}

/** Decisions counted by phase and by what the token was. */
type Tally = Map<string, Map<string, number>>;

function count(tally: Tally, phase: string, key: string) {
  const counts = tally.get(phase) ?? new Map<string, number>();
  counts.set(key, (counts.get(key) ?? 0) + 1);
  tally.set(phase, counts);
}

function isWrong(token: LoadToken, decision: Decision): boolean {
  return token.revoked
    ? decision !== "refused" && decision !== "unavailable"
    : decision !== "admitted" && decision !== "unavailable";
}

for (const kind of clientKinds) {
  describe(`three replicas while Redis fails, with ${kind}`, { skip }, () => {
    let redis: RedisServer;
    const replicas: Replica[] = [];
    let adminClient: ConnectedClient;
    let admin: RedisRevocations;
    const keys = { channel: `faults-${kind}:channel`, prefix: `faults-${kind}:` };
    let config: Parameters<typeof startReplica>[0];

    before(async () => {
      redis = await startRedisServer({ appendOnly: true });
      config = {
        kind: kind satisfies ClientKind,
        redisPort: redis.port,
        publicJwk: es256.publicJwk,
        maxStaleness: maxStalenessSec,
        ...keys,
      };
      const started = await Promise.allSettled([0, 1, 2].map(() => startReplica(config)));
      for (const result of started) {
        if (result.status === "fulfilled") {
          replicas.push(result.value);
        }
      }
      for (const result of started) {
        if (result.status === "rejected") {
          throw result.reason;
        }
      }
      adminClient = await connectClient(kind, redis.port);
      admin = redisRevocations({ client: adminClient.client, ...keys });
    });
    after(async () => {
      await admin?.close();
      await adminClient?.close();
      await Promise.all(replicas.map((replica) => replica.stop()));
      await redis?.stop();
    });

    test("paused past maxStaleness: every call Unavailable; resumed, restarted with and without its data: zero wrong decisions", async (t) => {
      const exp = nowSec() + 600;
      const load: LoadToken[] = [];
      let next = 0;
      /** A new token, issued a second ago, with a jti and a subject of its own. */
      async function newToken() {
        const n = next++;
        const claims = {
          sub: `${kind}-user-${n}`,
          jti: `${kind}-jti-${n}`,
          exp,
          iat: nowSec() - 1,
        };
        return { claims, token: await mint(es256, { claims }) };
      }
      for (let i = 0; i < 6; i++) {
        load.push({ token: (await newToken()).token, revoked: false });
      }

      /** Every replica refuses `token` (PermissionDenied), within 5 s. */
      async function refusedEverywhere(token: string) {
        for (const [r, replica] of replicas.entries()) {
          const client = replica.client(transportAt(r));
          const deadline = Date.now() + 5000;
          while ((await decide(client, token)) !== "refused") {
            assert.ok(Date.now() < deadline, `replica ${r} still admits a revoked token`);
            await sleep(20);
          }
        }
      }

      /**
       * Revokes two new tokens by jti (through `replica` and the admin process)
       * and one by subject, then, once every replica refuses them, adds them to
       * the load as revoked (a revocation under way is not judged).
       */
      async function revokeMore(replica: Replica) {
        const [byReplica, byAdmin, bySubject] = [
          await newToken(),
          await newToken(),
          await newToken(),
        ];
        await replica.revoke({ jti: byReplica.claims.jti, exp });
        await admin.revokeToken({ jti: byAdmin.claims.jti, exp });
        await admin.revokeSubject(bySubject.claims.sub);
        for (const { token } of [byReplica, byAdmin, bySubject]) {
          await refusedEverywhere(token);
          load.push({ token, revoked: true });
        }
      }

      /** Waits until every replica admits a valid token again; returns how long that took. */
      async function backInTouch(limitMs: number): Promise<number> {
        const started = Date.now();
        const valid = load.find((l) => !l.revoked);
        assert.ok(valid);
        for (const [r, replica] of replicas.entries()) {
          while ((await decide(replica.client(transportAt(0)), valid.token)) !== "admitted") {
            assert.ok(Date.now() - started < limitMs, `replica ${r} not back within ${limitMs} ms`);
            await sleep(20);
          }
        }
        return Date.now() - started;
      }

      const tally: Tally = new Map();
      const wrong: string[] = [];
      let phase = "steady";
      let running = true;
      /** A worker of the load: calls a random replica, over each transport in turn, with a random token. */
      async function worker(w: number) {
        for (let i = w; running; i++) {
          const replica = replicas[Math.floor(Math.random() * replicas.length)];
          const transport = transportAt(i);
          const token = load[Math.floor(Math.random() * load.length)];
          assert.ok(replica && token);
          const startedIn = phase;
          const decision = await decide(replica.client(transport), token.token);
          // A call that outlived its phase (started paused, decided resumed)
          // is counted apart: only whether it was wrong matters for it.
          const at = phase === startedIn ? phase : `${startedIn} → ${phase}`;
          count(tally, at, `${token.revoked ? "revoked" : "valid"} ${decision}`);
          if (isWrong(token, decision)) {
            wrong.push(
              `${at}: a ${token.revoked ? "revoked" : "valid"} token ${decision} over ${transport.name}`,
            );
          }
        }
      }

      await revokeMore(replicas[0] as Replica);
      const workers = [0, 1, 2, 3].map(worker);
      try {
        await sleep(1500);

        // Paused: within maxStaleness the replicas judge by their list; past it, refuse everything.
        phase = "pausing";
        redis.pause();
        try {
          await sleep(maxStalenessSec * 1000 + 500);
          phase = "paused past maxStaleness";
          await sleep(2000);
        } finally {
          phase = "resuming";
          redis.resume();
        }
        const resumedIn = await backInTouch(5000);
        phase = "resumed";
        await sleep(1500);
        await revokeMore(replicas[1] as Replica);

        // Restarted with its data: a replica started afterwards loads every revocation.
        phase = "restarting with data";
        await redis.restart();
        const withDataIn = await backInTouch(10_000);
        phase = "restarted with data";
        const revokedSoFar = load.filter((l) => l.revoked).length;
        // Two jti entries and a subject entry per revokeMore.
        assert.equal(
          Number(await adminClient.command(["ZCARD", `${keys.prefix}jti`])),
          (revokedSoFar * 2) / 3,
        );
        const late = await startReplica(config);
        try {
          for (const { token, revoked } of load) {
            assert.equal(
              await decide(late.client(transportAt(2)), token),
              revoked ? "refused" : "admitted",
            );
          }
        } finally {
          await late.stop();
        }
        await sleep(1000);

        // Restarted without its data: what the replicas know stays refused,
        // and new revocations fill the list again.
        phase = "restarting empty";
        await redis.restart({ keepData: false });
        const emptyIn = await backInTouch(10_000);
        phase = "restarted empty";
        assert.equal(Number(await adminClient.command(["ZCARD", `${keys.prefix}jti`])), 0);
        await sleep(1000);
        await revokeMore(replicas[2] as Replica);
        assert.equal(Number(await adminClient.command(["ZCARD", `${keys.prefix}jti`])), 2);
        assert.equal(Number(await adminClient.command(["ZCARD", `${keys.prefix}sub`])), 1);
        await sleep(1000);

        t.diagnostic(
          `back in touch after: resume ${resumedIn} ms, restart with data ${withDataIn} ms, restart empty ${emptyIn} ms`,
        );
      } finally {
        running = false;
        await Promise.all(workers);
      }

      let total = 0;
      for (const [name, counts] of tally) {
        const line = [...counts].map(([key, n]) => `${key} ${n}`).join(", ");
        total += [...counts.values()].reduce((a, b) => a + b, 0);
        t.diagnostic(`${kind}, ${name}: ${line}`);
      }
      t.diagnostic(`${kind}: ${total} calls, ${wrong.length} wrong decisions`);
      assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} wrong decisions`);

      const decisions = (name: string) => tally.get(name) ?? new Map<string, number>();
      // Past maxStaleness: every call refused as unavailable, and there were calls.
      const paused = decisions("paused past maxStaleness");
      assert.ok((paused.get("valid unavailable") ?? 0) > 0, "valid calls while paused");
      assert.ok((paused.get("revoked unavailable") ?? 0) > 0, "revoked calls while paused");
      assert.deepEqual(
        [...paused.keys()].filter((key) => !key.endsWith(" unavailable")),
        [],
        "while paused past maxStaleness, every call is refused as unavailable",
      );
      // Back to normal: judged by the list, nothing unavailable.
      for (const name of ["steady", "resumed"]) {
        const counts = decisions(name);
        assert.ok((counts.get("valid admitted") ?? 0) > 0, `${name}: valid calls admitted`);
        assert.ok((counts.get("revoked refused") ?? 0) > 0, `${name}: revoked calls refused`);
        assert.equal(counts.get("valid unavailable") ?? 0, 0, `${name}: nothing unavailable`);
        assert.equal(counts.get("revoked unavailable") ?? 0, 0, `${name}: nothing unavailable`);
      }
    });
  });
}
