import assert from "node:assert/strict";
import { describe, mock, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { endAtExpiry } from "../src/connect/stream-expiry.js";
import type { DeniedEvent } from "../src/index.js";
import { gateAndInterceptor, transports, useServer } from "./helpers/server.js";
import { audience, generateTestKey, issuer, mint } from "./helpers/tokens.js";

const key = await generateTestKey("ES256");

describe("endAtExpiry, on a mocked clock", () => {
  async function* forever() {
    for (let i = 0; ; i++) {
      yield i;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  test("ends the stream at the deadline with the given error", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 });
    const seen: number[] = [];
    const done = (async () => {
      for await (const n of endAtExpiry(forever(), 3500, () => new Error("expired"))) {
        seen.push(n);
      }
    })().then(
      () => undefined,
      (err: unknown) => err,
    );
    for (let i = 0; i < 5; i++) {
      await new Promise(setImmediate); // let the stream take its next step
      t.mock.timers.tick(1000);
    }
    await new Promise(setImmediate);
    assert.match(String(await done), /expired/);
    assert.deepEqual(seen, [0, 1, 2, 3]);
  });

  test("a stream that ends first clears its timer", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 });
    const cleared = mock.method(globalThis, "clearTimeout");
    async function* two() {
      yield 1;
      yield 2;
    }
    const seen: number[] = [];
    for await (const n of endAtExpiry(two(), 10_000, () => new Error("expired"))) {
      seen.push(n);
    }
    assert.deepEqual(seen, [1, 2]);
    assert.equal(cleared.mock.callCount(), 1);
    cleared.mock.restore();
  });

  test("a deadline beyond setTimeout's range is waited for in steps", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 });
    const it = endAtExpiry(forever(), 2 ** 31 + 5000, () => new Error("expired"))[
      Symbol.asyncIterator
    ]();
    assert.deepEqual(await it.next(), { done: false, value: 0 });
    t.mock.timers.tick(2 ** 31 - 1); // the first step ends, the stream goes on
    await new Promise(setImmediate);
    await it.return(undefined);
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
          e.subject === "user-1",
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
