// What a handler sees when its token expires during a streaming call, on a
// real server, on every transport that can make the call, with mocked timers:
// the clock jumps past exp + tolerance while the call is open.
import assert from "node:assert/strict";
import { beforeEach, describe, type TestContext, test } from "node:test";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type Interceptor,
  type StreamResponse,
} from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { createJwtAuth, type DeniedEvent } from "../../src/index.js";
import { audience, generateTestKey, issuer, mint } from "../helpers/fixtures.js";
import { type CallKind, callKinds, transports, useServer } from "../helpers/server.js";

const key = await generateTestKey("ES256");
const tolerance = 5;

/** What one handler saw of its call. */
interface HandlerRun {
  readonly texts: string[];
  /** How its request iteration ended: "done", or the error it threw; undefined if it did not. */
  ended: unknown;
  /** The reason its ctx.signal had aborted with when its iteration (or its response) ended, or "not aborted". */
  signalAtEnd: unknown;
  finish(): void;
  readonly finished: Promise<void>;
}

function startRun(runs: HandlerRun[]): HandlerRun {
  let finish = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const run = { texts: [], ended: undefined, signalAtEnd: undefined, finish, finished };
  runs.push(run);
  return run;
}

/** The handler's request iteration, recorded in `run`. */
async function* observe<T extends { text: string }>(
  run: HandlerRun,
  requests: AsyncIterable<T>,
  signal: AbortSignal,
): AsyncGenerator<T> {
  try {
    for await (const req of requests) {
      run.texts.push(req.text);
      yield req;
    }
    run.ended = "done";
  } catch (err) {
    run.ended = err;
    throw err;
  } finally {
    run.signalAtEnd = signal.aborted ? signal.reason : "not aborted";
  }
}

/** The demo service, with handlers that record what they see. */
function observedRoutes(runs: HandlerRun[]) {
  return (router: ConnectRouter) =>
    router.service(DemoService, {
      ping: () => ({}),
      whoAmI: () => ({}),
      // limit > 0: that many notes. 0: a note, then more until the call's signal says stop.
      async *listNotes(req, ctx) {
        const run = startRun(runs);
        try {
          for (let i = 1; i <= Math.max(req.limit, 1); i++) {
            yield { note: { id: String(i) } };
          }
          if (req.limit === 0) {
            await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
          }
        } finally {
          run.signalAtEnd = ctx.signal.aborted ? ctx.signal.reason : "not aborted";
          run.finish();
        }
      },
      // Stores the notes as they come, and answers with how many it stored even
      // when the stream fails: the answer must not reach a client whose token expired.
      async uploadNotes(requests, ctx) {
        const run = startRun(runs);
        try {
          for await (const _ of observe(run, requests, ctx.signal)) {
            // stored
          }
        } catch {
          // answered all the same
        } finally {
          run.finish();
        }
        return { count: run.texts.length };
      },
      async *chat(requests, ctx) {
        const run = startRun(runs);
        try {
          for await (const req of observe(run, requests, ctx.signal)) {
            yield { text: req.text };
          }
        } finally {
          run.finish();
        }
      },
    });
}

/**
 * An interceptor outside the auth that holds a call's answer before passing
 * it on, as a slow write would. `drain` takes the whole response stream from
 * the auth first (the handler has finished); otherwise the first message is
 * passed on and the rest waits.
 */
function holdAnswers(drain: boolean) {
  const state = { holding: false, release: () => {} };
  const interceptor: Interceptor = (next) => async (req) => {
    const res = await next(req);
    if (!res.stream) {
      return res;
    }
    const released = new Promise<void>((resolve) => {
      state.release = resolve;
    });
    async function* held(message: StreamResponse["message"]) {
      const it = message[Symbol.asyncIterator]();
      const taken = [];
      for (let next = await it.next(); next.done !== true; next = await it.next()) {
        taken.push(next.value);
        if (!drain) {
          break;
        }
      }
      yield* taken;
      state.holding = true;
      await released;
      yield* { [Symbol.asyncIterator]: () => it };
    }
    return { ...res, message: held(res.message) };
  };
  return { interceptor, state };
}

describe("handlers of streaming calls whose token expires, on a mocked clock", () => {
  const denied: DeniedEvent[] = [];
  const runs: HandlerRun[] = [];
  const hold = holdAnswers(false);
  const drainThenHold = holdAnswers(true);
  const serverWith = (outer?: Interceptor) =>
    useServer(() => {
      const auth = createJwtAuth({
        jwks: { keys: [key.publicJwk] },
        issuer,
        audience,
        clockTolerance: tolerance,
        onDenied: (e) => denied.push(e),
      });
      const interceptors = outer === undefined ? [auth.interceptor] : [outer, auth.interceptor];
      const routes = observedRoutes(runs);
      return {
        handler: connectNodeAdapter({ routes, interceptors, requestGate: auth.requestGate }),
      };
    });
  const server = serverWith();
  const heldServer = serverWith(hold.interceptor);
  const drainedServer = serverWith(drainThenHold.interceptor);
  beforeEach(() => {
    denied.length = 0;
    runs.length = 0;
    hold.state.holding = false;
    drainThenHold.state.holding = false;
  });

  /**
   * Mints a token valid for a minute and sets the mocked clock to now. Returns
   * the call's headers and how far to tick the clock to reach exp + tolerance.
   */
  async function tokenAndClock(t: TestContext) {
    const exp = Math.floor(Date.now() / 1000) + 60;
    const token = await mint(key, { claims: { exp } });
    const start = Date.now();
    t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: start });
    const headers = { authorization: `Bearer ${token}` };
    return { headers, toDeadline: (exp + tolerance) * 1000 - start };
  }

  function expiredEvents(method: string) {
    return denied.filter((e) => e.reason === "ERR_TOKEN_EXPIRED" && e.method.endsWith(method));
  }

  function assertRefusal(error: unknown, what: string) {
    assert.ok(error instanceof ConnectError, `${what}: not a ConnectError: ${String(error)}`);
    assert.equal(error.code, Code.PermissionDenied, what);
    assert.equal(error.rawMessage, "token expired", what);
    assert.equal(error.metadata.get("www-authenticate"), 'Bearer error="invalid_token"', what);
  }

  /** The first request, then the second once `release` is called, then the end. */
  function twoRequests(first: string, second: string) {
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    async function* requests() {
      yield { text: first };
      await released;
      yield { text: second };
    }
    return { requests: requests(), release };
  }

  for (const transport of transportsFor("client-streaming")) {
    test(`${transport.name}: client-streaming: at exp + tolerance the handler's iteration ends with the refusal, its signal aborts, and its answer is refused`, async (t) => {
      const { headers, toDeadline } = await tokenAndClock(t);
      const { requests, release } = twoRequests("before", "after");
      const outcome = settle(server().client(transport, []).uploadNotes(requests, { headers }));
      await waitFor(() => runs[0]?.texts.length === 1, "the handler to read the first message");
      t.mock.timers.tick(toDeadline);
      release();
      assertRefusal((await bounded(outcome, "the call")).error, "the client");
      const run = await finishedRun(runs);
      assert.deepEqual(run.texts, ["before"], "a message sent after expiry reached the handler");
      assertRefusal(run.ended, "the handler's iteration");
      assertRefusal(run.signalAtEnd, "the handler's signal");
      assert.equal(expiredEvents("UploadNotes").length, 1);
    });

    test(`${transport.name}: client-streaming: a handler that finished before exp is answered, even if the token expires while the answer is sent`, async (t) => {
      const { headers, toDeadline } = await tokenAndClock(t);
      async function* one() {
        yield { text: "one" };
      }
      const outcome = settle(heldServer().client(transport, []).uploadNotes(one(), { headers }));
      await waitFor(() => hold.state.holding, "the answer to be held");
      assert.equal(runs[0]?.ended, "done");
      t.mock.timers.tick(toDeadline);
      hold.state.release();
      const { value, error } = await bounded(outcome, "the call");
      assert.equal(error, undefined);
      assert.equal(value?.count, 1);
      assert.equal(expiredEvents("UploadNotes").length, 0);
    });
  }

  for (const transport of transportsFor("bidi")) {
    test(`${transport.name}: bidi: at exp + tolerance the handler's iteration ends with the refusal and its signal aborts`, async (t) => {
      const { headers, toDeadline } = await tokenAndClock(t);
      const { requests, release } = twoRequests("before", "after");
      const replies: string[] = [];
      const outcome = settle(
        (async () => {
          for await (const res of server().client(transport, []).chat(requests, { headers })) {
            replies.push(res.text);
          }
        })(),
      );
      await waitFor(() => replies.length === 1, "the first echo");
      t.mock.timers.tick(toDeadline);
      release();
      assertRefusal((await bounded(outcome, "the call")).error, "the client");
      assert.deepEqual(replies, ["before"]);
      const run = await finishedRun(runs);
      assert.deepEqual(run.texts, ["before"], "a message sent after expiry reached the handler");
      assertRefusal(run.ended, "the handler's iteration");
      assertRefusal(run.signalAtEnd, "the handler's signal");
      assert.equal(expiredEvents("Chat").length, 1);
    });

    test(`${transport.name}: bidi: a response completed before exp is never turned into a refusal`, async (t) => {
      const { headers, toDeadline } = await tokenAndClock(t);
      async function* one() {
        yield { text: "one" };
      }
      const replies: string[] = [];
      const outcome = settle(
        (async () => {
          for await (const res of drainedServer().client(transport, []).chat(one(), { headers })) {
            replies.push(res.text);
          }
        })(),
      );
      await waitFor(() => drainThenHold.state.holding, "the response to be held");
      t.mock.timers.tick(toDeadline);
      drainThenHold.state.release();
      assert.equal((await bounded(outcome, "the call")).error, undefined);
      assert.deepEqual(replies, ["one"]);
      const run = await finishedRun(runs);
      assert.equal(run.ended, "done");
      assert.equal(run.signalAtEnd, "not aborted");
      assert.equal(expiredEvents("Chat").length, 0);
    });
  }

  for (const transport of transportsFor("server-streaming")) {
    test(`${transport.name}: server-streaming: at exp + tolerance the handler's signal aborts and the client is refused`, async (t) => {
      const { headers, toDeadline } = await tokenAndClock(t);
      const notes: string[] = [];
      const outcome = settle(
        (async () => {
          for await (const res of server().client(transport, []).listNotes({}, { headers })) {
            notes.push(res.note?.id ?? "");
          }
        })(),
      );
      await waitFor(() => notes.length === 1, "the first note");
      t.mock.timers.tick(toDeadline);
      assertRefusal((await bounded(outcome, "the call")).error, "the client");
      assert.deepEqual(notes, ["1"]);
      assertRefusal((await finishedRun(runs)).signalAtEnd, "the handler's signal");
      assert.equal(expiredEvents("ListNotes").length, 1);
    });

    test(`${transport.name}: server-streaming: a response completed before exp is never turned into a refusal`, async (t) => {
      const { headers, toDeadline } = await tokenAndClock(t);
      const notes: string[] = [];
      const client = drainedServer().client(transport, []);
      const outcome = settle(
        (async () => {
          for await (const res of client.listNotes({ limit: 2 }, { headers })) {
            notes.push(res.note?.id ?? "");
          }
        })(),
      );
      await waitFor(() => drainThenHold.state.holding, "the response to be held");
      await finishedRun(runs);
      t.mock.timers.tick(toDeadline);
      drainThenHold.state.release();
      assert.equal((await bounded(outcome, "the call")).error, undefined);
      assert.deepEqual(notes, ["1", "2"]);
      assert.equal(expiredEvents("ListNotes").length, 0);
    });
  }
});

function transportsFor(kind: CallKind) {
  return transports.filter((t) => callKinds(t).includes(kind));
}

/** The value a promise resolves to, or the ConnectError it rejects with. */
async function settle<T>(promise: Promise<T>): Promise<{ value?: T; error?: ConnectError }> {
  try {
    return { value: await promise };
  } catch (err) {
    return { error: ConnectError.from(err) };
  }
}

/** The run of the call's handler, once it has finished. */
async function finishedRun(runs: HandlerRun[]): Promise<HandlerRun> {
  const run = runs[0];
  assert.ok(run, "no handler ran");
  await bounded(run.finished, "the handler to finish");
  return run;
}

// A test that goes wrong may wait forever: these bounds (on the real clock)
// turn that into a failure that says what was awaited. No test passes or
// fails by how fast something happened.
const patienceMs = 5000;

async function bounded<T>(promise: Promise<T>, what: string): Promise<T> {
  const gaveUp = Symbol();
  const result = await Promise.race([promise, realDelay(patienceMs).then(() => gaveUp)]);
  if (result === gaveUp) {
    assert.fail(`waited in vain for ${what}`);
  }
  return result as T;
}

async function waitFor(condition: () => boolean, what: string) {
  const until = performance.now() + patienceMs;
  while (!condition()) {
    assert.ok(performance.now() < until, `waited in vain for ${what}`);
    await realDelay(2);
  }
}

/** A delay on the real clock (performance.now), which the mocked timers leave alone. */
function realDelay(ms: number): Promise<void> {
  const until = performance.now() + ms;
  return new Promise((resolve) => {
    const step = () => (performance.now() >= until ? resolve() : setImmediate(step));
    step();
  });
}
