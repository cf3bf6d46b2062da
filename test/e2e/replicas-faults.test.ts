// Three server processes sharing one redis-server (with an append-only file),
// under a load of mixed calls on every protocol, valid and revoked Bearer
// tokens, DPoP calls with fresh proofs and replays of proofs already
// accepted, while Redis fails: paused (SIGSTOP) past maxStaleness and the
// replay store's timeout, resumed, restarted with its data, restarted
// without it. Every decision is counted: a revoked token or a replayed proof
// admitted, or a valid token or a fresh proof refused with anything but
// Unavailable, is a wrong decision, and there must be none over the whole
// run. The one exception is spelled out and bounded: Redis restarted without
// its data forgets the proofs it recorded, so a proof accepted before may be
// accepted once more after it, while it is younger than proofMaxAge (plus
// the clock tolerance); see docs/replicas.md.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type RedisRevocations, redisRevocations } from "../../src/redis/index.js";
import { cnfOf, dpopHeaders, generateDpopKey, makeProof } from "../helpers/dpop.js";
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
import {
  type Decision,
  decide,
  type Replica,
  startReplica,
  startReplicas,
} from "../helpers/replicas.js";
import { type TransportKind, transports } from "../helpers/server.js";

const skip = redisSkip();
if (skip !== undefined) {
  console.log(`skipping the replica fault tests: ${skip}`);
}

/** Small, so that a pause outlasts it in a test; resyncs every 2/3 s. */
const maxStalenessSec = 2;
/** The replay store's timeout: a DPoP call waits this long for a paused Redis. */
const dpopTimeoutSec = 0.5;
/**
 * Short, so that a proof outlives it in a test: a proof is accepted until
 * its iat is proofMaxAge plus the clock tolerance (5 s) old, and Redis keeps
 * its record as long.
 */
const proofMaxAgeSec = 6;
const proofLifeSec = proofMaxAgeSec + 5;
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

/** A DPoP proof a replica accepted, replayed by the load. */
interface AcceptedProof {
  readonly headers: Record<string, string>;
  /** How many times Redis had lost its data when the call that got it accepted began. */
  readonly epoch: number;
  /** Whether a replay was admitted after Redis lost its record of the proof. */
  readmitted: boolean;
}

/**
 * What a call of the load was: a revoked token or a replayed proof must not
 * be admitted, a valid token or a fresh proof must not be refused.
 */
type CallWhat = "valid" | "revoked" | "dpop fresh" | "dpop replayed";

/** Decisions counted by phase and by what the token was. */
type Tally = Map<string, Map<string, number>>;

function count(tally: Tally, phase: string, key: string) {
  const counts = tally.get(phase) ?? new Map<string, number>();
  counts.set(key, (counts.get(key) ?? 0) + 1);
  tally.set(phase, counts);
}

function isWrong(what: CallWhat, decision: Decision): boolean {
  return what === "revoked" || what === "dpop replayed"
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
        dpopTimeout: dpopTimeoutSec,
        proofMaxAge: proofMaxAgeSec,
        ...keys,
      };
      replicas.push(...(await startReplicas(3, config)));
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
      const dpopKey = await generateDpopKey();
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
      const dpopToken = await mint(es256, {
        claims: { ...cnfOf(dpopKey), sub: `${kind}-dpop`, jti: `${kind}-jti-dpop`, exp },
      });
      /** The headers of a DPoP call with a new proof. */
      const freshProof = async () =>
        dpopHeaders(dpopToken, await makeProof(dpopKey, { token: dpopToken }));
      /** Proofs accepted by the load; replays pick among the last few, younger than proofMaxAge. */
      const accepted: AcceptedProof[] = [];
      /** Incremented as Redis is restarted without its data. */
      let epoch = 0;

      /** A new proof, accepted by `replica` (kept out of the load's replays). */
      async function acceptedBy(replica: Replica, r: number) {
        const headers = await freshProof();
        assert.equal(await decide(replica.client(transportAt(r)), headers), "admitted");
        return headers;
      }

      /** Every replica but `except` refuses each of `proofs` as replayed (PermissionDenied). */
      async function replaysRefused(proofs: readonly Record<string, string>[], except?: number) {
        for (const [p, headers] of proofs.entries()) {
          for (const [r, replica] of replicas.entries()) {
            if (r !== (except ?? p)) {
              const decision = await decide(replica.client(transportAt(r + p)), headers);
              assert.equal(decision, "refused", `replica ${r} on proof ${p}`);
            }
          }
        }
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

      /**
       * Waits until every replica admits a valid token and a fresh DPoP proof
       * again; returns how long that took.
       */
      async function backInTouch(limitMs: number): Promise<number> {
        const started = Date.now();
        const valid = load.find((l) => !l.revoked);
        assert.ok(valid);
        for (const [r, replica] of replicas.entries()) {
          const client = replica.client(transportAt(0));
          while (
            (await decide(client, valid.token)) !== "admitted" ||
            (await decide(client, await freshProof())) !== "admitted"
          ) {
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
      /**
       * A worker of the load: calls a random replica, over each transport in
       * turn, with a random token of the load (half the calls), a fresh DPoP
       * proof or a replay of one accepted lately.
       */
      async function worker(w: number) {
        for (let i = w; running; i++) {
          const replica = replicas[Math.floor(Math.random() * replicas.length)];
          const transport = transportAt(i);
          assert.ok(replica);
          const dice = Math.random();
          const recent = accepted.slice(-20);
          const replay =
            dice >= 0.75 && recent.length > 0
              ? recent[Math.floor(Math.random() * recent.length)]
              : undefined;
          let what: CallWhat;
          let credentials: string | Record<string, string>;
          if (dice < 0.5) {
            const token = load[Math.floor(Math.random() * load.length)];
            assert.ok(token);
            what = token.revoked ? "revoked" : "valid";
            credentials = token.token;
          } else if (replay === undefined) {
            what = "dpop fresh";
            credentials = await freshProof();
          } else {
            what = "dpop replayed";
            credentials = replay.headers;
          }
          const startedIn = phase;
          const startedInEpoch = epoch;
          const decision = await decide(replica.client(transport), credentials);
          // A call that outlived its phase (started paused, decided resumed)
          // is counted apart: only whether it was wrong matters for it.
          const at = phase === startedIn ? phase : `${startedIn} → ${phase}`;
          if (what === "dpop fresh" && decision === "admitted") {
            accepted.push({
              headers: credentials as Record<string, string>,
              epoch: startedInEpoch,
              readmitted: false,
            });
          }
          if (
            replay !== undefined &&
            decision === "admitted" &&
            replay.epoch < epoch &&
            !replay.readmitted
          ) {
            // Accepted before Redis lost its data, replayed after: its record
            // is gone, and it is accepted once more (and recorded again).
            replay.readmitted = true;
            count(tally, at, `${what} admitted once more, its record lost`);
            continue;
          }
          count(tally, at, `${what} ${decision}`);
          if (isWrong(what, decision)) {
            wrong.push(`${at}: ${what} ${decision} over ${transport.name}`);
          }
        }
      }

      // A proof accepted before the load; replayed after Redis lost its data,
      // it has outlived proofMaxAge.
      const early = await acceptedBy(replicas[0] as Replica, 0);
      const earlyAt = Date.now();
      for (const [r, replica] of replicas.entries()) {
        const headers = await acceptedBy(replica, r);
        accepted.push({ headers, epoch, readmitted: false });
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

        // Restarted with its data: a replica started afterwards loads every
        // revocation, and every replica refuses the proofs accepted before.
        const beforeAof = await Promise.all(replicas.map((replica, r) => acceptedBy(replica, r)));
        phase = "restarting with data";
        await redis.restart();
        const withDataIn = await backInTouch(10_000);
        phase = "restarted with data";
        await replaysRefused(beforeAof);
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
          for (const [p, headers] of beforeAof.entries()) {
            assert.equal(await decide(late.client(transportAt(p)), headers), "refused");
          }
        } finally {
          await late.stop();
        }
        await sleep(1000);

        // Restarted without its data: what the replicas know stays refused,
        // and new revocations fill the list again. The record of used proofs
        // is gone: a proof accepted shortly before is accepted once more (the
        // limit docs/replicas.md states), then refused again; one older than
        // proofMaxAge is refused by its iat alone.
        await sleep(earlyAt + proofLifeSec * 1000 + 1000 - Date.now());
        const young = await acceptedBy(replicas[0] as Replica, 0);
        phase = "restarting empty";
        epoch++;
        await redis.restart({ keepData: false });
        const emptyIn = await backInTouch(10_000);
        phase = "restarted empty";
        assert.equal(Number(await adminClient.command(["ZCARD", `${keys.prefix}jti`])), 0);
        assert.equal(
          await decide((replicas[1] as Replica).client(transportAt(1)), early),
          "refused",
        );
        assert.equal(
          await decide((replicas[1] as Replica).client(transportAt(1)), young),
          "admitted",
          "a proof accepted before Redis lost its data is accepted once more",
        );
        await replaysRefused([young], 1);
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

      const denials: Record<string, number> = {};
      for (const replica of replicas) {
        for (const [reason, n] of Object.entries(await replica.denials())) {
          denials[reason] = (denials[reason] ?? 0) + n;
        }
      }
      t.diagnostic(`${kind}, refusals by reason: ${JSON.stringify(denials)}`);
      assert.ok((denials.ERR_DPOP_REPLAYED ?? 0) > 0, "replays refused as ERR_DPOP_REPLAYED");
      assert.ok((denials.ERR_DPOP_PROOF_EXPIRED ?? 0) > 0, "the early proof refused by its iat");

      const decisions = (name: string) => tally.get(name) ?? new Map<string, number>();
      // Past maxStaleness and the replay store's timeout: every call refused
      // as unavailable, and there were calls of every kind.
      const paused = decisions("paused past maxStaleness");
      for (const what of ["valid", "revoked", "dpop fresh", "dpop replayed"]) {
        assert.ok((paused.get(`${what} unavailable`) ?? 0) > 0, `${what} calls while paused`);
      }
      assert.deepEqual(
        [...paused.keys()].filter((key) => !key.endsWith(" unavailable")),
        [],
        "while paused past maxStaleness, every call is refused as unavailable",
      );
      // Back to normal: judged by the list and the replay store, nothing unavailable.
      for (const name of ["steady", "resumed"]) {
        const counts = decisions(name);
        assert.ok((counts.get("valid admitted") ?? 0) > 0, `${name}: valid calls admitted`);
        assert.ok((counts.get("revoked refused") ?? 0) > 0, `${name}: revoked calls refused`);
        assert.ok((counts.get("dpop fresh admitted") ?? 0) > 0, `${name}: fresh proofs admitted`);
        assert.ok((counts.get("dpop replayed refused") ?? 0) > 0, `${name}: replays refused`);
        assert.deepEqual(
          [...counts.keys()].filter((key) => key.endsWith(" unavailable")),
          [],
          `${name}: nothing unavailable`,
        );
      }
      // Redis back with its data or without: replays refused again.
      for (const name of ["restarted with data", "restarted empty"]) {
        assert.ok(
          (decisions(name).get("dpop replayed refused") ?? 0) > 0,
          `${name}: replays refused`,
        );
      }
    });
  });
}
