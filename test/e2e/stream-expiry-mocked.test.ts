// Stream expiry on every protocol with mocked timers: the clock jumps past the
// token's exp while a bidi stream is open, and the stream ends at once.
import assert from "node:assert/strict";
import { describe, mock, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import type { DeniedEvent } from "../../src/index.js";
import { audience, generateTestKey, issuer, mint } from "../helpers/fixtures.js";
import { callKinds, gateAndInterceptor, transports, useServer } from "../helpers/server.js";

const key = await generateTestKey("ES256");

describe("a bidi stream whose token expires, on a mocked clock", () => {
  const denied: DeniedEvent[] = [];
  const server = useServer(() =>
    gateAndInterceptor({
      jwks: { keys: [key.publicJwk] },
      issuer,
      audience,
      clockTolerance: 5,
      onDenied: (e) => denied.push(e),
    }),
  );

  for (const transport of transports.filter((t) => callKinds(t).includes("bidi"))) {
    test(`${transport.name}: ended at exp + tolerance, not before`, async (t) => {
      const start = Date.now();
      const exp = Math.floor(start / 1000) + 60;
      const token = await mint(key, { claims: { exp } });
      t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: start });
      t.after(() => mock.timers.reset());
      // The client keeps its side open until we say so.
      let finish: () => void = () => {};
      const open = new Promise<void>((resolve) => {
        finish = resolve;
      });
      async function* requests() {
        yield { text: "hello" };
        await open;
      }
      const replies: string[] = [];
      const ended = (async () => {
        try {
          for await (const res of server()
            .client(transport)
            .chat(requests(), { headers: { authorization: `Bearer ${token}` } })) {
            replies.push(res.text);
          }
          return undefined;
        } catch (err) {
          return ConnectError.from(err);
        }
      })();
      // Wait (in real time) for the echo: the stream is open and verified.
      for (let i = 0; i < 400 && replies.length === 0; i++) {
        await realDelay(5);
      }
      assert.deepEqual(replies, ["hello"]);
      // Just before exp + tolerance: still open.
      t.mock.timers.tick((exp + 5) * 1000 - start - 10);
      await realDelay(20);
      assert.equal(
        await Promise.race([ended.then(() => "ended"), realDelay(20).then(() => "open")]),
        "open",
      );
      // Past it: ended with the failure code and invalid_token.
      t.mock.timers.tick(20);
      const error = await Promise.race([ended, realDelay(5000).then(() => "timeout" as const)]);
      finish();
      assert.ok(error instanceof ConnectError, `the stream was not ended: ${String(error)}`);
      assert.equal(error.code, Code.PermissionDenied);
      assert.equal(error.metadata.get("www-authenticate"), 'Bearer error="invalid_token"');
      assert.ok(
        denied.some((e) => e.reason === "ERR_TOKEN_EXPIRED" && e.protocol === transport.protocol),
      );
    });
  }
});

/** A delay on the real clock (performance.now), which the mocked timers leave alone. */
function realDelay(ms: number): Promise<void> {
  const until = performance.now() + ms;
  return new Promise((resolve) => {
    const step = () => (performance.now() >= until ? resolve() : setImmediate(step));
    step();
  });
}
