// Server nonces: stateless, shared by every replica with the secret, the
// current and the previous window accepted.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createDpopNonces } from "../../src/core/dpop-nonce.js";

const secret = "a secret of at least thirty-two bytes";

test("the current nonce is accepted, by another instance with the same secret too", async () => {
  const nonces = createDpopNonces({ secret });
  const nonce = await nonces.current();
  assert.match(nonce, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(await nonces.accepts(nonce), true);
  assert.equal(await createDpopNonces({ secret }).accepts(nonce), true);
  assert.equal(await createDpopNonces({ secret: `${secret}!` }).accepts(nonce), false);
});

test("a nonce is accepted for one more lifetime, then refused", async (t) => {
  t.mock.timers.enable({ apis: ["Date"], now: Date.UTC(2030, 0, 1) });
  const nonces = createDpopNonces({ secret, lifetime: "1m" });
  const nonce = await nonces.current();
  t.mock.timers.tick(60_000);
  assert.equal(await nonces.accepts(nonce), true, "the previous window");
  assert.notEqual(await nonces.current(), nonce, "a new nonce each window");
  t.mock.timers.tick(60_000);
  assert.equal(await nonces.accepts(nonce), false, "two windows on");
});

test("anything but a current nonce is refused", async () => {
  const nonces = createDpopNonces({ secret });
  for (const value of [undefined, "", 42, "forged", `${await nonces.current()}x`]) {
    assert.equal(await nonces.accepts(value), false, String(value));
  }
});

test("the options are checked", () => {
  assert.throws(() => createDpopNonces({ secret: "short" }), /at least 32 bytes/);
  assert.throws(() => createDpopNonces({ secret: new Uint8Array(31) }), /at least 32 bytes/);
  assert.throws(() => createDpopNonces({ secret, lifetime: 0 }), /at least 1 second/);
  assert.doesNotThrow(() => createDpopNonces({ secret: new Uint8Array(32) }));
});
