// Remote keys (jwksUrl, issuerUrl) against a JWKS server that misbehaves on
// command: down, slow, hanging, answering HTML, huge or redirected bodies.
// Every refusal must be a stable code with a fixed message; nothing the
// endpoint sent may reach the error.
import * as assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import { exportJWK, type JWK } from "jose";
import {
  AuthError,
  createJwtAuth,
  createVerifier,
  type DeniedEvent,
  type RemoteKeysOptions,
  type VerifierOptions,
} from "../../src/index.js";
import {
  assertNoLeak,
  assertRefused,
  audience,
  compactJws,
  freezeClock,
  generateTestKey,
  issuer,
  keyPair,
  mint,
  nowSeconds,
  type TestKeyPair,
} from "../helpers/fixtures.js";
import { call, callKinds, transports, useServer } from "../helpers/server.js";

// --- the fault-injecting JWKS server

/** One request the server saw, and how its response ended. */
interface Exchange {
  readonly path: string;
  /** Body bytes handed to the socket so far. */
  bytesSent: number;
  /** The whole response was written. */
  completed: boolean;
  /** The connection closed before the response was complete: the client gave up. */
  cutOff: boolean;
}

/** What the server does with a request for the JWKS (any path but discovery). */
type Behaviour = (res: ServerResponse, exchange: Exchange, server: FaultServer) => void;

interface FaultServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** `<origin>/jwks` */
  readonly jwksUrl: string;
  /** The keys {@link serveKeys} answers with; change them to rotate. */
  keys: JWK[];
  /** How the JWKS path answers; change it to take the server down or bring it up. */
  behaviour: Behaviour;
  /** The document served at `/.well-known/openid-configuration`, if any. */
  discovery: Record<string, unknown> | undefined;
  readonly exchanges: Exchange[];
  /** Requests seen, all of them or those for one path. */
  count(path?: string): number;
  close(): Promise<void>;
}

/** A marker written into every bad body: it must never appear in an error. */
const bodyMarker = "body-marker-7c41e09b";

async function startFaultServer(t: TestContext, behaviour: Behaviour): Promise<FaultServer> {
  const timers = new Set<NodeJS.Timeout>();
  const http = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://host").pathname;
    const exchange: Exchange = { path, bytesSent: 0, completed: false, cutOff: false };
    fault.exchanges.push(exchange);
    res.on("finish", () => {
      exchange.completed = true;
    });
    res.on("close", () => {
      exchange.cutOff = !res.writableFinished;
    });
    if (path === "/.well-known/openid-configuration" && fault.discovery !== undefined) {
      sendBody(res, exchange, 200, JSON.stringify(fault.discovery));
      return;
    }
    fault.behaviour(res, exchange, fault);
  });
  http.listen(0, "127.0.0.1");
  await new Promise((resolve) => http.once("listening", resolve));
  const { port } = http.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const fault: FaultServer & { timers: Set<NodeJS.Timeout> } = {
    origin,
    jwksUrl: `${origin}/jwks`,
    keys: [],
    behaviour,
    discovery: undefined,
    exchanges: [],
    timers,
    count: (path) => fault.exchanges.filter((e) => path === undefined || e.path === path).length,
    async close() {
      for (const timer of timers) {
        clearTimeout(timer);
      }
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
  t.after(() => fault.close());
  return fault;
}

function sendBody(res: ServerResponse, exchange: Exchange, status: number, body: string) {
  const bytes = Buffer.from(body);
  res.writeHead(status, {
    "content-type": body.startsWith("<") ? "text/html" : "application/json",
    "content-length": bytes.byteLength,
  });
  exchange.bytesSent += bytes.byteLength;
  res.end(bytes);
}

function later(server: FaultServer, ms: number, run: () => void) {
  const timers = (server as unknown as { timers: Set<NodeJS.Timeout> }).timers;
  const timer = setTimeout(() => {
    timers.delete(timer);
    run();
  }, ms);
  timers.add(timer);
}

/** Answers with the server's current keys. */
const serveKeys: Behaviour = (res, exchange, server) =>
  sendBody(res, exchange, 200, JSON.stringify({ keys: server.keys }));

/** Answers with an HTTP error status. */
const status =
  (code: number): Behaviour =>
  (res, exchange) =>
    sendBody(res, exchange, code, JSON.stringify({ error: bodyMarker }));

/** Drops the connection without an answer, as a crashing server does. */
const reset: Behaviour = (res) => res.socket?.destroy();

/** Answers with this text and status 200. */
const body =
  (text: string): Behaviour =>
  (res, exchange) =>
    sendBody(res, exchange, 200, text);

/** Never answers. */
const hang: Behaviour = () => {};

/** Answers with the keys, but only after `ms`. */
const slowHeaders =
  (ms: number): Behaviour =>
  (res, exchange, server) =>
    later(server, ms, () => {
      if (!res.destroyed) {
        serveKeys(res, exchange, server);
      }
    });

/** Sends the headers and the start of the keys at once, and the rest never. */
const slowBody: Behaviour = (res, exchange, server) => {
  res.writeHead(200, { "content-type": "application/json" });
  const head = `{"keys":${JSON.stringify(server.keys)}`;
  exchange.bytesSent += Buffer.byteLength(head);
  res.write(head);
};

/** Answers with the keys, but with another status than 200. */
const keysWithStatus =
  (code: number): Behaviour =>
  (res, exchange, server) =>
    sendBody(res, exchange, code, JSON.stringify({ keys: server.keys }));

/**
 * Redirects to a path that serves the keys. The redirect carries the keys in
 * its body too, so that neither following it nor reading its body would fail.
 */
const redirect: Behaviour = (res, exchange, server) => {
  if (exchange.path === "/moved") {
    serveKeys(res, exchange, server);
    return;
  }
  res.setHeader("location", `${server.origin}/moved`);
  keysWithStatus(302)(res, exchange, server);
};

const fiveMiB = 5 * 1024 * 1024;

/**
 * Streams a valid JWKS of 5 MiB (the server's keys, padded with JSON
 * whitespace), 64 KiB every 2 ms, so that a client that stops reading is seen
 * to stop before the end. Without a body cap, the keys would load and verify.
 */
const huge =
  (withLength: boolean): Behaviour =>
  (res, exchange, server) => {
    const head = Buffer.from(`{"keys":${JSON.stringify(server.keys)}`);
    const tail = Buffer.from("}");
    let padding = fiveMiB - head.byteLength - tail.byteLength;
    res.writeHead(200, {
      "content-type": "application/json",
      ...(withLength ? { "content-length": fiveMiB } : {}),
    });
    const write = (chunk: Buffer) => {
      exchange.bytesSent += chunk.byteLength;
      res.write(chunk);
    };
    write(head);
    const step = () => {
      if (res.destroyed) {
        return;
      }
      if (padding === 0) {
        exchange.bytesSent += tail.byteLength;
        res.end(tail);
        return;
      }
      const size = Math.min(padding, 64 * 1024);
      padding -= size;
      write(Buffer.alloc(size, " "));
      later(server, 2, step);
    };
    step();
  };

// --- keys, tokens and verifiers

const keyA = await keyPair("ES256");
const keyB = await keyPair("ES256");
const protocolKey = await generateTestKey("ES256");

function jwkOf(kp: TestKeyPair, kid: string): JWK {
  return { ...kp.publicJwk, kid, alg: "ES256", use: "sig" };
}

function sign(kp: TestKeyPair, kid: string, claims: Record<string, unknown> = {}) {
  return mint(
    { alg: "ES256", kid, privateKey: kp.privateKey },
    { claims: { jti: randomUUID(), ...claims } },
  );
}

function verifierFor(
  server: FaultServer,
  remoteKeys: RemoteKeysOptions = {},
  options: Partial<VerifierOptions> = {},
) {
  return createVerifier({
    jwksUrl: server.jwksUrl,
    algorithms: ["ES256"],
    issuer,
    audience,
    remoteKeys,
    ...options,
  });
}

/**
 * Refused with `code` and its fixed message; nothing of the token or of the
 * body the endpoint sent anywhere in the error, cause included. The cause may
 * name the URL (it is for server logs); the message never does.
 */
async function refused(
  promise: Promise<unknown>,
  code: "ERR_KEYS_UNAVAILABLE" | "ERR_KEY_NOT_FOUND",
  server: FaultServer,
  token?: string,
) {
  const err = await assertRefused(promise, code, token);
  assertNoLeak(err, [bodyMarker]);
  assert.ok(!err.message.includes(server.origin), "the message names the URL");
  return err;
}

async function waitFor(condition: () => boolean, what: string, ms = 2_000) {
  const deadline = performance.now() + ms;
  while (!condition()) {
    assert.ok(performance.now() < deadline, `timed out waiting for ${what}`);
    await sleep(5);
  }
}

// --- the tests

describe("keys are loaded lazily", () => {
  test("creating a verifier or a JwtAuth fetches nothing; the first verification does", async (t) => {
    const server = await startFaultServer(t, serveKeys);
    server.keys = [jwkOf(keyA, "a")];
    const verifier = verifierFor(server);
    createJwtAuth({ jwksUrl: server.jwksUrl, issuer, audience });
    await sleep(50);
    assert.equal(server.count(), 0);
    assert.equal((await verifier.verify(await sign(keyA, "a"))).iss, issuer);
    assert.equal(server.count(), 1);
    assert.equal((await verifier.verify(await sign(keyA, "a"))).iss, issuer);
    assert.equal(server.count(), 1, "fresh keys are not fetched again");
  });
});

describe("an endpoint down at startup", () => {
  for (const [name, down] of [
    ["dropping connections", reset],
    ["answering 500", status(500)],
    ["answering 503", status(503)],
  ] as const) {
    test(`${name}: unavailable, warmUp rejects, and tokens verify once it is up and the cooldown passed`, async (t) => {
      const at = freezeClock(t.mock.timers);
      const server = await startFaultServer(t, down);
      server.keys = [jwkOf(keyA, "a")];
      const auth = createJwtAuth({
        jwksUrl: server.jwksUrl,
        algorithms: ["ES256"],
        issuer,
        audience,
        remoteKeys: { cooldown: 10 },
      });
      const warm = await refused(auth.warmUp(), "ERR_KEYS_UNAVAILABLE", server);
      assert.ok(warm instanceof AuthError);
      assert.equal(server.count(), 1);
      const token = await sign(keyA, "a");
      await refused(auth.verify(token), "ERR_KEYS_UNAVAILABLE", server, token);
      assert.equal(server.count(), 1, "the cooldown holds after a failure");

      server.behaviour = serveKeys;
      at(9.9);
      await refused(auth.verify(await sign(keyA, "a")), "ERR_KEYS_UNAVAILABLE", server);
      assert.equal(server.count(), 1, "still within the cooldown");
      at(10.001);
      assert.equal((await auth.verify(await sign(keyA, "a"))).iss, issuer);
      assert.equal(server.count(), 2);
      await auth.warmUp();
      assert.equal(server.count(), 2, "warmUp within the cooldown fetches nothing more");
    });
  }

  test("a verifier's warmUp rejects the same way, and resolves once the keys load", async (t) => {
    const at = freezeClock(t.mock.timers);
    const server = await startFaultServer(t, status(500));
    server.keys = [jwkOf(keyA, "a")];
    const verifier = verifierFor(server, { cooldown: 1 });
    await refused(verifier.warmUp(), "ERR_KEYS_UNAVAILABLE", server);
    server.behaviour = serveKeys;
    at(1.001);
    await verifier.warmUp();
    assert.equal(server.count(), 2);
  });
});

describe("an endpoint that goes down with keys cached", () => {
  test("old keys keep verifying for staleIfError past maxAge, then calls are unavailable", async (t) => {
    const at = freezeClock(t.mock.timers);
    const server = await startFaultServer(t, serveKeys);
    server.keys = [jwkOf(keyA, "a")];
    const verifier = verifierFor(server, { cooldown: 1, maxAge: 60, staleIfError: 600 });
    assert.ok(await verifier.verify(await sign(keyA, "a")));
    assert.equal(server.count(), 1);

    server.behaviour = status(500);
    at(30);
    assert.ok(await verifier.verify(await sign(keyA, "a")));
    assert.equal(server.count(), 1, "keys younger than maxAge are not refetched");

    at(61);
    assert.ok(await verifier.verify(await sign(keyA, "a")), "stale keys verify at once");
    await waitFor(() => server.count() === 2, "the background refetch past maxAge");
    await verifier.warmUp(); // joins that refetch; the frozen clock keeps it in its cooldown
    assert.equal(server.count(), 2);
    assert.equal(server.exchanges[1]?.completed, true, "and it was answered (with a 500)");

    at(400);
    assert.ok(await verifier.verify(await sign(keyA, "a")));
    await verifier.warmUp();
    assert.equal(server.count(), 3);

    at(659.9);
    assert.ok(await verifier.verify(await sign(keyA, "a")), "still within maxAge + staleIfError");
    await verifier.warmUp();

    at(660.1);
    const token = await sign(keyA, "a");
    await refused(verifier.verify(token), "ERR_KEYS_UNAVAILABLE", server, token);
    await refused(verifier.warmUp(), "ERR_KEYS_UNAVAILABLE", server);

    // Back up: the next fetch after the cooldown restores service.
    server.behaviour = serveKeys;
    at(662);
    assert.ok(await verifier.verify(await sign(keyA, "a")));
  });
});

describe("an endpoint slower than the timeout", () => {
  test("past maxAge, a verification does not wait for the refetch", async (t) => {
    const at = freezeClock(t.mock.timers);
    const server = await startFaultServer(t, serveKeys);
    server.keys = [jwkOf(keyA, "a")];
    const verifier = verifierFor(server, { maxAge: 60, timeout: 5 });
    assert.ok(await verifier.verify(await sign(keyA, "a")));
    server.behaviour = hang;
    at(61);
    const token = await sign(keyA, "a");
    const start = performance.now();
    assert.ok(await verifier.verify(token));
    const elapsed = performance.now() - start;
    assert.ok(elapsed < 1_000, `the call waited ${elapsed} ms for the refetch`);
    await waitFor(() => server.count() === 2, "the background refetch");
  });

  for (const [name, behaviour] of [
    ["never answering", hang],
    ["answering after 1.5 s", slowHeaders(1_500)],
    ["sending half a body and stalling", slowBody],
  ] as const) {
    // The test's own timeout turns a fetch that never ends into a failure, not a hang.
    test(`${name}: unavailable within about the timeout`, { timeout: 5_000 }, async (t) => {
      const server = await startFaultServer(t, behaviour);
      server.keys = [jwkOf(keyA, "a")];
      const verifier = verifierFor(server, { timeout: 0.2 });
      const token = await sign(keyA, "a");
      const start = performance.now();
      await refused(verifier.verify(token), "ERR_KEYS_UNAVAILABLE", server, token);
      const elapsed = performance.now() - start;
      assert.ok(elapsed >= 150, `refused after ${elapsed} ms, before the timeout`);
      assert.ok(elapsed < 2_000, `refused after ${elapsed} ms`);
      assert.equal(server.count(), 1);
    });
  }
});

describe("a bad answer is refused whole", () => {
  const badAnswers: [string, (server: FaultServer) => Behaviour][] = [
    ["an HTML page", () => body(`<!doctype html><title>${bodyMarker}</title><p>sign in</p>`)],
    ["invalid JSON", () => body(`{"keys": [${bodyMarker}`)],
    ["a JSON array", (s) => body(JSON.stringify([{ keys: s.keys, note: bodyMarker }]))],
    ['{ "keys": "x" }', () => body(JSON.stringify({ keys: "x", note: bodyMarker }))],
    ["a JSON string", () => body(JSON.stringify(bodyMarker))],
    ["an empty body", () => body("")],
  ];
  for (const [name, make] of badAnswers) {
    test(`${name}: ERR_KEYS_UNAVAILABLE, and the cooldown holds after it`, async (t) => {
      const server = await startFaultServer(t, hang);
      server.keys = [jwkOf(keyA, "a")];
      server.behaviour = make(server);
      const verifier = verifierFor(server);
      const token = await sign(keyA, "a");
      await refused(verifier.verify(token), "ERR_KEYS_UNAVAILABLE", server, token);
      await refused(verifier.verify(token), "ERR_KEYS_UNAVAILABLE", server, token);
      assert.equal(server.count(), 1);
    });
  }

  test("a set holding a private key: refused, even the public keys beside it", async (t) => {
    const server = await startFaultServer(t, serveKeys);
    const privateJwk = { ...(await exportJWK(keyB.privateKey)), kid: "b", alg: "ES256" };
    assert.equal(typeof privateJwk.d, "string");
    server.keys = [jwkOf(keyA, "a"), privateJwk];
    const verifier = verifierFor(server);
    for (const token of [await sign(keyA, "a"), await sign(keyB, "b")]) {
      const err = await refused(verifier.verify(token), "ERR_KEYS_UNAVAILABLE", server, token);
      assertNoLeak(err, [privateJwk.d as string]);
    }
    // The control: the same set without the private key verifies.
    const control = await startFaultServer(t, serveKeys);
    control.keys = [jwkOf(keyA, "a")];
    assert.ok(await verifierFor(control).verify(await sign(keyA, "a")));
  });

  test("a set holding a symmetric key: refused", async (t) => {
    const server = await startFaultServer(t, serveKeys);
    const k = Buffer.from(`${bodyMarker}-0123456789abcdef`).toString("base64url");
    server.keys = [jwkOf(keyA, "a"), { kty: "oct", kid: "s", k }];
    const err = await refused(
      verifierFor(server).verify(await sign(keyA, "a")),
      "ERR_KEYS_UNAVAILABLE",
      server,
    );
    assertNoLeak(err, [k]);
  });

  for (const code of [201, 203, 204, 206, 304, 404, 500]) {
    test(`HTTP ${code} with a valid JWKS body: refused, only 200 is accepted`, async (t) => {
      const server = await startFaultServer(t, keysWithStatus(code));
      server.keys = [jwkOf(keyA, "a")];
      const token = await sign(keyA, "a");
      await refused(verifierFor(server).verify(token), "ERR_KEYS_UNAVAILABLE", server, token);
    });
  }

  test("a redirect to a valid JWKS is not followed", async (t) => {
    const server = await startFaultServer(t, redirect);
    server.keys = [jwkOf(keyA, "a")];
    const token = await sign(keyA, "a");
    await refused(verifierFor(server).verify(token), "ERR_KEYS_UNAVAILABLE", server, token);
    assert.deepEqual(
      server.exchanges.map((e) => e.path),
      ["/jwks"],
    );
    // The control: the target serves keys that verify.
    const direct = verifierFor(server, {}, { jwksUrl: `${server.origin}/moved` });
    assert.ok(await direct.verify(token));
  });

  test("5 MiB announced by content-length: refused without reading it", async (t) => {
    const server = await startFaultServer(t, huge(true));
    server.keys = [jwkOf(keyA, "a")];
    const token = await sign(keyA, "a");
    await refused(verifierFor(server).verify(token), "ERR_KEYS_UNAVAILABLE", server, token);
    const [exchange] = server.exchanges;
    assert.ok(exchange !== undefined);
    // The header alone is enough: the client stops before reading up to the cap.
    const sentAtRefusal = exchange.bytesSent;
    assert.ok(sentAtRefusal < 1024 * 1024, `${sentAtRefusal} bytes sent before the refusal`);
    await waitFor(() => exchange.cutOff, "the client to close the connection");
    assert.equal(exchange.completed, false);
  });

  test("5 MiB chunked, without content-length: cut off while reading", async (t) => {
    const server = await startFaultServer(t, huge(false));
    server.keys = [jwkOf(keyA, "a")];
    const token = await sign(keyA, "a");
    await refused(verifierFor(server).verify(token), "ERR_KEYS_UNAVAILABLE", server, token);
    const [exchange] = server.exchanges;
    assert.ok(exchange !== undefined);
    const sentAtRefusal = exchange.bytesSent;
    assert.ok(sentAtRefusal > 1024 * 1024, `only ${sentAtRefusal} bytes sent: not cut off reading`);
    assert.ok(sentAtRefusal < fiveMiB, "the whole body was sent before the refusal");
    await waitFor(() => exchange.cutOff, "the client to close the connection");
    assert.equal(exchange.completed, false);
    assert.ok(exchange.bytesSent < fiveMiB);
  });

  test("the control: the same 5 MiB body loads under a 6 MiB maxBodySize", async (t) => {
    const server = await startFaultServer(t, huge(false));
    server.keys = [jwkOf(keyA, "a")];
    const verifier = verifierFor(server, { maxBodySize: 6 * 1024 * 1024 });
    assert.ok(await verifier.verify(await sign(keyA, "a")));
    assert.equal(server.exchanges[0]?.completed, true);
  });
});

describe("new and rotated keys", () => {
  test("1,000 concurrent tokens with a new kid: one extra fetch, all verify", async (t) => {
    const at = freezeClock(t.mock.timers);
    const server = await startFaultServer(t, serveKeys);
    server.keys = [jwkOf(keyA, "a")];
    const verifier = verifierFor(server, { cooldown: 30 });
    assert.ok(await verifier.verify(await sign(keyA, "a")));
    assert.equal(server.count(), 1);

    server.keys = [jwkOf(keyA, "a"), jwkOf(keyB, "b")];
    at(31);
    const tokens = await Promise.all(Array.from({ length: 1_000 }, () => sign(keyB, "b")));
    const results = await Promise.allSettled(tokens.map((token) => verifier.verify(token)));
    const failed = results.filter((r) => r.status === "rejected");
    assert.equal(failed.length, 0, `${failed.length} failed, e.g. ${String(failed[0]?.reason)}`);
    assert.equal(server.count(), 2);
  });

  test("rotation: the new kid waits for the cooldown, then verifies with one fetch", async (t) => {
    const at = freezeClock(t.mock.timers);
    const server = await startFaultServer(t, serveKeys);
    server.keys = [jwkOf(keyA, "a")];
    const verifier = verifierFor(server, { cooldown: 5 });
    assert.ok(await verifier.verify(await sign(keyA, "a")));

    server.keys = [jwkOf(keyB, "b")];
    at(1);
    const early = await sign(keyB, "b");
    await refused(verifier.verify(early), "ERR_KEY_NOT_FOUND", server, early);
    assert.equal(server.count(), 1, "no fetch within the cooldown");

    at(5.001);
    assert.equal((await verifier.verify(await sign(keyB, "b"))).iss, issuer);
    assert.equal(server.count(), 2);
    assert.ok(await verifier.verify(early), "the token refused early verifies now");
    const old = await sign(keyA, "a");
    await refused(verifier.verify(old), "ERR_KEY_NOT_FOUND", server, old);
    assert.equal(server.count(), 2, "the removed kid costs no fetch within the cooldown");
  });

  test("a kid unknown to a fresh fetch is ERR_KEY_NOT_FOUND, not unavailable", async (t) => {
    const server = await startFaultServer(t, serveKeys);
    server.keys = [jwkOf(keyA, "a")];
    const token = await sign(keyB, "b");
    await refused(verifierFor(server).verify(token), "ERR_KEY_NOT_FOUND", server, token);
    assert.equal(server.count(), 1);
  });
});

describe("a flood of unknown kids while the endpoint answers 500", () => {
  for (const loadedFirst of [false, true]) {
    const code = loadedFirst ? "ERR_KEY_NOT_FOUND" : "ERR_KEYS_UNAVAILABLE";
    test(`${loadedFirst ? "with" : "without"} keys loaded before: at most one fetch per cooldown, every call ${code}`, async (t) => {
      const server = await startFaultServer(t, serveKeys);
      server.keys = [jwkOf(keyA, "a")];
      const cooldownMs = 200;
      const verifier = verifierFor(server, { cooldown: cooldownMs / 1000 });
      if (loadedFirst) {
        assert.ok(await verifier.verify(await sign(keyA, "a")));
      }
      server.behaviour = status(500);
      const before = server.count();
      const now = nowSeconds();
      const claims = { iss: issuer, aud: audience, iat: now, exp: now + 300 };
      const signature = Buffer.alloc(64, 7).toString("base64url");
      const start = performance.now();
      const outcomes: Promise<string>[] = [];
      for (let i = 0; i < 10_000; i++) {
        const token = compactJws({ alg: "ES256", kid: randomUUID() }, claims, signature);
        outcomes.push(
          verifier.verify(token).then(
            () => "verified",
            (err: unknown) => (err instanceof AuthError ? err.code : `not an AuthError: ${err}`),
          ),
        );
        if (i % 100 === 99) {
          await sleep(10);
        }
      }
      const seen = await Promise.all(outcomes);
      const elapsed = performance.now() - start;
      const fetches = server.count() - before;
      const tally = Object.fromEntries(
        [...new Set(seen)].map((c) => [c, seen.filter((s) => s === c).length]),
      );
      assert.deepEqual(tally, { [code]: 10_000 });
      assert.ok(elapsed >= 900, `the loop ran only ${elapsed} ms`);
      assert.ok(
        fetches <= elapsed / cooldownMs + 1,
        `${fetches} fetches in ${Math.round(elapsed)} ms with a ${cooldownMs} ms cooldown`,
      );
      assert.ok(fetches >= 2, `${fetches} fetches: the cooldown should let a refetch through`);
    });
  }
});

describe("OpenID Connect discovery through issuerUrl", () => {
  async function discovering(
    t: TestContext,
    document: (origin: string) => Record<string, unknown>,
  ) {
    const server = await startFaultServer(t, serveKeys);
    server.keys = [jwkOf(keyA, "a")];
    server.discovery = document(server.origin);
    return server;
  }
  const discoveryPath = "/.well-known/openid-configuration";

  function discoveringVerifier(issuerUrl: string) {
    return createVerifier({ issuerUrl, audience, algorithms: ["ES256"] });
  }

  test("the document names the issuer and a loopback jwks_uri: tokens verify", async (t) => {
    const server = await discovering(t, (o) => ({ issuer: `${o}/`, jwks_uri: `${o}/jwks` }));
    const issuerUrl = `${server.origin}/`;
    const verifier = discoveringVerifier(issuerUrl);
    assert.equal(server.count(), 0, "nothing is fetched before the first call");
    const claims = await verifier.verify(await sign(keyA, "a", { iss: issuerUrl }));
    assert.equal(claims.iss, issuerUrl);
    assert.ok(await verifier.verify(await sign(keyA, "a", { iss: issuerUrl })));
    assert.deepEqual(
      server.exchanges.map((e) => e.path),
      [discoveryPath, "/jwks"],
    );
    // issuerUrl is also the default issuer: another iss is refused.
    await assert.rejects(verifier.verify(await sign(keyA, "a", { iss: server.origin })), {
      code: "ERR_ISSUER_INVALID",
    });
  });

  // The last column: the jwks_uri is refused by the URL rules, before any
  // attempt to reach it (the cause, for logs, says so); without this check a
  // failed connection would look the same from here.
  const refusedDocuments: [
    string,
    string,
    (origin: string) => Record<string, unknown>,
    "by the URL rules"?,
  ][] = [
    [
      "the issuer lacks the configured trailing slash",
      "/",
      (o) => ({ issuer: o, jwks_uri: `${o}/jwks` }),
    ],
    [
      "the issuer has a trailing slash not configured",
      "",
      (o) => ({ issuer: `${o}/`, jwks_uri: `${o}/jwks` }),
    ],
    [
      "the issuer is another host",
      "/",
      (o) => ({ issuer: "https://evil.example/", jwks_uri: `${o}/jwks` }),
    ],
    ["jwks_uri is missing", "/", (o) => ({ issuer: `${o}/` })],
    ["jwks_uri is not a string", "/", (o) => ({ issuer: `${o}/`, jwks_uri: [`${o}/jwks`] })],
    [
      "jwks_uri is plain http to a non-loopback host",
      "/",
      (o) => ({ issuer: `${o}/`, jwks_uri: "http://example.com/jwks" }),
      "by the URL rules",
    ],
    [
      "jwks_uri is http to a name that starts like a loopback address",
      "/",
      (o) => ({ issuer: `${o}/`, jwks_uri: "http://127.0.0.1.nip.io/jwks" }),
      "by the URL rules",
    ],
    [
      "jwks_uri is not a URL",
      "/",
      (o) => ({ issuer: `${o}/`, jwks_uri: "jwks" }),
      "by the URL rules",
    ],
  ];
  test("a document naming another issuer: the cause names the issuer it found", async (t) => {
    const server = await discovering(t, (o) => ({
      issuer: "https://evil.example/",
      jwks_uri: `${o}/jwks`,
    }));
    const issuerUrl = `${server.origin}/`;
    const token = await sign(keyA, "a", { iss: issuerUrl });
    const err = await refused(
      discoveringVerifier(issuerUrl).verify(token),
      "ERR_KEYS_UNAVAILABLE",
      server,
      token,
    );
    assert.match(
      String(err.cause),
      /names the issuer "https:\/\/evil\.example\/", not "http:\/\/127/,
    );
  });

  for (const [name, suffix, document, byUrlRules] of refusedDocuments) {
    test(`${name}: ERR_KEYS_UNAVAILABLE, no JWKS fetched`, async (t) => {
      const server = await discovering(t, document);
      const issuerUrl = `${server.origin}${suffix}`;
      const verifier = discoveringVerifier(issuerUrl);
      const token = await sign(keyA, "a", { iss: issuerUrl });
      const err = await refused(verifier.verify(token), "ERR_KEYS_UNAVAILABLE", server, token);
      if (byUrlRules !== undefined) {
        assert.match(
          String(err.cause),
          /jwks_uri (must use https|is not a valid URL)/,
          "refused by the URL rules",
        );
      }
      await refused(verifier.warmUp(), "ERR_KEYS_UNAVAILABLE", server);
      assert.deepEqual(
        server.exchanges.map((e) => e.path),
        [discoveryPath],
      );
    });
  }

  test("a discovery endpoint answering 500: ERR_KEYS_UNAVAILABLE", async (t) => {
    const server = await startFaultServer(t, status(500));
    const issuerUrl = `${server.origin}/`;
    const token = await sign(keyA, "a", { iss: issuerUrl });
    await refused(
      discoveringVerifier(issuerUrl).verify(token),
      "ERR_KEYS_UNAVAILABLE",
      server,
      token,
    );
    assert.deepEqual(
      server.exchanges.map((e) => e.path),
      [discoveryPath],
    );
  });
});

describe("remote key options are checked at construction", () => {
  const base = { algorithms: ["ES256"], issuer, audience };
  const mistakes: [string, VerifierOptions][] = [
    ["plain http to a non-loopback host", { ...base, jwksUrl: "http://example.com/jwks" }],
    [
      "plain http to a name that starts with 127.",
      { ...base, jwksUrl: "http://127.evil.example/jwks" },
    ],
    [
      "plain http to a name that starts with a loopback address",
      { ...base, jwksUrl: "http://127.0.0.1.nip.io/jwks" },
    ],
    ["a jwksUrl that is no URL", { ...base, jwksUrl: "not a url" }],
    ["a relative jwksUrl", { ...base, jwksUrl: "/jwks" }],
    ["a scheme other than http(s)", { ...base, jwksUrl: "file:///etc/jwks.json" }],
    [
      "maxBodySize: 10",
      { ...base, jwksUrl: "https://issuer.example/jwks", remoteKeys: { maxBodySize: 10 } },
    ],
    [
      "algorithms: [HS256] with jwksUrl",
      { ...base, jwksUrl: "https://issuer.example/jwks", algorithms: ["HS256"] },
    ],
    [
      "a negative timeout",
      { ...base, jwksUrl: "https://issuer.example/jwks", remoteKeys: { timeout: -1 } },
    ],
    ["an issuerUrl over plain http", { audience, issuerUrl: "http://issuer.example/" }],
  ];
  for (const [name, options] of mistakes) {
    test(`${name}: TypeError`, () => {
      assert.throws(() => createVerifier(options), TypeError);
      assert.throws(() => createJwtAuth(options), TypeError);
    });
  }

  test("https anywhere and http on loopback are accepted", () => {
    for (const jwksUrl of [
      "https://issuer.example/jwks",
      "http://127.0.0.1:8080/jwks",
      "http://127.1.2.3/jwks",
      "http://localhost:8080/jwks",
      "http://[::1]:8080/jwks",
      "http://127.1/jwks", // the URL parser reads it as 127.0.0.1
      "http://2130706433/jwks",
      new URL("https://issuer.example/jwks"),
    ]) {
      assert.ok(createVerifier({ ...base, jwksUrl }), String(jwksUrl));
    }
  });
});

describe("over Connect, with the JWKS endpoint down", () => {
  const denied: DeniedEvent[] = [];
  let jwks: { count(): number; close(): Promise<void> } | undefined;
  const server = useServer(async () => {
    const http = createServer((_req, res) => {
      res.writeHead(500).end(bodyMarker);
    });
    let fetches = 0;
    http.on("request", () => fetches++);
    http.listen(0, "127.0.0.1");
    await new Promise((resolve) => http.once("listening", resolve));
    const { port } = http.address() as AddressInfo;
    jwks = {
      count: () => fetches,
      close: () => {
        http.closeAllConnections();
        return new Promise((resolve) => http.close(() => resolve()));
      },
    };
    const auth = createJwtAuth({
      jwksUrl: `http://127.0.0.1:${port}/jwks`,
      algorithms: ["ES256"],
      issuer,
      audience,
      onDenied: (e) => denied.push(e),
    });
    return { interceptors: [auth.interceptor], requestGate: auth.requestGate };
  });

  for (const transport of transports) {
    test(`${transport.name}: every call kind is Unavailable, without a challenge`, async () => {
      const token = await mint(protocolKey);
      for (const kind of callKinds(transport)) {
        denied.length = 0;
        const before = server().calls.length;
        const outcome = await call(server().client(transport), kind, `Bearer ${token}`);
        assert.equal(outcome.ok, false, `${kind} was let through`);
        if (outcome.ok) return;
        assert.equal(outcome.error.code, Code.Unavailable, kind);
        assert.equal(outcome.error.rawMessage, "authentication unavailable", kind);
        assert.equal(outcome.error.metadata.get("www-authenticate"), null, kind);
        const wire = `${outcome.error.message} ${JSON.stringify([...outcome.error.metadata])}`;
        assert.ok(!wire.includes(bodyMarker), `${kind}: the JWKS body reached the client`);
        assert.equal(server().calls.length, before, `${kind}: the handler ran`);
        assert.deepEqual(
          denied.map((e) => e.reason),
          ["ERR_KEYS_UNAVAILABLE"],
        );
      }
      // The default 30 s cooldown holds after the failure: one fetch for every call.
      assert.equal(jwks?.count(), 1);
    });
  }
  after(() => jwks?.close());
});
