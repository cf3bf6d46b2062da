import assert from "node:assert/strict";
import { describe, mock, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { endAtAbort, startExpiry } from "../../src/connect/stream-expiry.js";
import type { DeniedEvent } from "../../src/index.js";
import { audience, generateTestKey, issuer, mint, secretClaims } from "../helpers/fixtures.js";
import { gateAndInterceptor, transports, useServer } from "../helpers/server.js";

const key = await generateTestKey("ES256");

describe("startExpiry, on a mocked clock", () => {
  test("aborts its signal at the deadline with the given error, made once", (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 });
    const expired = mock.fn(() => new Error("expired"));
    const { signal } = startExpiry(3500, expired);
    t.mock.timers.tick(3499);
    assert.equal(signal.aborted, false);
    t.mock.timers.tick(1);
    assert.equal(signal.aborted, true);
    assert.match(String(signal.reason), /expired/);
    t.mock.timers.tick(10_000);
    assert.equal(expired.mock.callCount(), 1);
  });

  test("a deadline already passed aborts at once", (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 5000 });
    assert.equal(startExpiry(4000, () => new Error("expired")).signal.aborted, true);
  });

  test("stop clears the timer", (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 });
    const expired = mock.fn(() => new Error("expired"));
    const expiry = startExpiry(3500, expired);
    expiry.stop();
    expiry.stop();
    t.mock.timers.tick(10_000);
    assert.equal(expiry.signal.aborted, false);
    assert.equal(expired.mock.callCount(), 0);
  });

  test("a deadline beyond setTimeout's range is waited for in steps", (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 });
    const { signal } = startExpiry(2 ** 31 + 5000, () => new Error("expired"));
    t.mock.timers.tick(2 ** 31 - 1); // the first step ends, the wait goes on
    assert.equal(signal.aborted, false);
    t.mock.timers.tick(5001);
    assert.equal(signal.aborted, true);
  });
});

describe("endAtAbort", () => {
  async function* messages(...values: number[]) {
    yield* values;
  }

  test("ends the stream with the signal's reason, also while it waits, and lets go of the source", async () => {
    const controller = new AbortController();
    let letGo = false;
    async function* source() {
      try {
        yield 1;
        await new Promise(() => {}); // waits for a message that never comes
      } finally {
        letGo = true;
      }
    }
    const it = endAtAbort(source(), controller.signal)[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { done: false, value: 1 });
    const waiting = it.next();
    controller.abort(new Error("expired"));
    await assert.rejects(waiting, /expired/);
    assert.deepEqual(await it.next(), { done: true, value: undefined });
    // The source is still waiting: its return() runs once it steps, never for us to await.
    assert.equal(letGo, false);
  });

  test("a signal already aborted ends the stream before its first message", async () => {
    const controller = new AbortController();
    controller.abort(new Error("expired"));
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const n of endAtAbort(messages(1, 2), controller.signal)) {
        seen.push(n);
      }
    }, /expired/);
    assert.deepEqual(seen, []);
  });

  test("a stream that ends first passes every message and calls onEnd once", async () => {
    const onEnd = mock.fn();
    const seen: number[] = [];
    for await (const n of endAtAbort(messages(1, 2), new AbortController().signal, onEnd)) {
      seen.push(n);
    }
    assert.deepEqual(seen, [1, 2]);
    assert.equal(onEnd.mock.callCount(), 1);
  });

  test("holds no listener on the signal between messages", async () => {
    const signal = new AbortController().signal;
    const listening = mock.method(signal, "addEventListener");
    const letGo = mock.method(signal, "removeEventListener");
    for await (const _ of endAtAbort(messages(1, 2, 3), signal)) {
      assert.equal(listening.mock.callCount(), letGo.mock.callCount());
    }
    assert.equal(listening.mock.callCount(), 4);
    assert.equal(letGo.mock.callCount(), 4);
  });
});

describe("streams that outlive their token", () => {
  const denied: DeniedEvent[] = [];
  const server = useServer(() =>
    gateAndInterceptor({
      jwks: { keys: [key.publicJwk] },
      issuer,
      audience,
      clockTolerance: 0,
      onDenied: (e) => denied.push(e),
    }),
  );
  const off = useServer(() =>
    gateAndInterceptor({
      jwks: { keys: [key.publicJwk] },
      issuer,
      audience,
      clockTolerance: 0,
      endStreamsAtExpiry: false,
    }),
  );

  async function slowStream(
    client: ReturnType<ReturnType<typeof server>["client"]>,
    token: string,
  ) {
    const notes: string[] = [];
    try {
      for await (const res of client.listNotes(
        { limit: 40 },
        { headers: { authorization: `Bearer ${token}` } },
      )) {
        notes.push(res.note?.id ?? "");
      }
      return { notes, error: undefined };
    } catch (err) {
      return { notes, error: ConnectError.from(err) };
    }
  }

  test("are ended at exp with the failure code and invalid_token, on every protocol", async () => {
    const exp = Math.floor(Date.now() / 1000) + 2;
    const token = await mint(key, { claims: { exp } });
    const results = await Promise.all(transports.map((t) => slowStream(server().client(t), token)));
    for (const [i, { notes, error }] of results.entries()) {
      const name = transports[i]?.name;
      assert.ok(notes.length > 0, `${name}: the stream ran before expiry`);
      assert.ok(notes.length < 40, `${name}: the stream was not ended`);
      assert.equal(error?.code, Code.PermissionDenied, `${name}: code`);
      assert.equal(error?.rawMessage, "token expired");
      assert.equal(error?.metadata.get("www-authenticate"), 'Bearer error="invalid_token"');
    }
    assert.ok(Date.now() / 1000 >= exp, "ended before exp");
    assert.ok(
      denied.some(
        (e) =>
          e.reason === "ERR_TOKEN_EXPIRED" &&
          e.method.endsWith("/ListNotes") &&
          e.subject === secretClaims.sub,
      ),
    );
  });

  test("run to their end with endStreamsAtExpiry: false", async () => {
    const token = await mint(key, { claims: { exp: Math.floor(Date.now() / 1000) + 1 } });
    const transport = transports[2];
    assert.ok(transport);
    const { notes, error } = await slowStream(off().client(transport), token);
    assert.equal(error, undefined);
    assert.equal(notes.length, 40);
  });
});
