// The in-memory replay store: a key is used once until it expires; when full
// of unexpired keys it refuses (throws) rather than forget one.
import assert from "node:assert/strict";
import { test } from "node:test";
import { memoryReplayStore } from "../../src/index.js";

const now = () => Date.now() / 1000;

test("a key is used once until it expires", async (t) => {
  t.mock.timers.enable({ apis: ["Date"], now: Date.UTC(2030, 0, 1) });
  const store = memoryReplayStore();
  assert.equal(store.use("k", now() + 10), true);
  assert.equal(store.use("k", now() + 10), false);
  assert.equal(store.use("other", now() + 10), true);
  t.mock.timers.tick(10_000);
  assert.equal(store.use("k", now() + 10), true, "expired: a new proof may reuse it");
});

test("full of unexpired keys, it throws instead of forgetting one", async (t) => {
  t.mock.timers.enable({ apis: ["Date"], now: Date.UTC(2030, 0, 1) });
  const store = memoryReplayStore({ maxEntries: 2 });
  assert.equal(store.use("a", now() + 5), true);
  assert.equal(store.use("b", now() + 60), true);
  assert.throws(() => store.use("c", now() + 60), /full/);
  assert.equal(store.use("a", now() + 5), false, "still remembered");
  t.mock.timers.tick(6_000);
  assert.equal(store.use("c", now() + 60), true, "the expired entry made room");
  assert.equal(store.use("b", now() + 60), false);
});

test("maxEntries must be a positive integer", () => {
  for (const maxEntries of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => memoryReplayStore({ maxEntries }), /maxEntries must be a positive integer/);
  }
});
