import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  createClient,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport } from "@connectrpc/connect-node";
import { base64url, EmbeddedJWK, type JWTPayload, jwtVerify } from "jose";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { createDpopKeyPair, type DpopAuthOptions, dpopAuth } from "../../src/client/index.js";
import {
  call,
  callKinds,
  methodOf,
  startServer,
  type TestServer,
  transports,
  useServer,
} from "../helpers/server.js";

const algs = ["ES256", "EdDSA", "PS256", "RS256"] as const;
const keyPair = await createDpopKeyPair("ES256");
const failureCode = Code.Unauthenticated;
const now = () => Math.floor(Date.now() / 1000);

/** A proof the gate admitted, and the request it came with. */
interface Admitted {
  readonly token: string;
  readonly alg: string;
  readonly requestMethod: string;
  readonly payload: JWTPayload;
}

/**
 * What the test's gate does. It is the oracle of these tests, written here
 * with `jose` alone and independent of the product's server: it refuses as
 * RFC 9449 §7.1 says, with the code `failureCode`.
 */
interface GateState {
  /** The nonce proofs must carry; undefined: none. */
  nonce: string | undefined;
  /** Whether every proof is refused for its nonce, each time with a new one. */
  stubborn: boolean;
  /** The nonce sent on admitted calls' responses; undefined: none. */
  nextNonce: string | undefined;
  /** Tokens refused with `invalid_token`. */
  readonly revoked: Set<string>;
  readonly admitted: Admitted[];
  /** Every request the gate saw, admitted or not. */
  requests: number;
  readonly jtis: Set<string>;
}

function newState(): GateState {
  return {
    nonce: undefined,
    stubborn: false,
    nextNonce: undefined,
    revoked: new Set(),
    admitted: [],
    requests: 0,
    jtis: new Set(),
  };
}

const algsParam = `algs="${algs.join(" ")}"`;

function refuse(error: string, detail: string, nonce?: string): never {
  throw new ConnectError(`gate: ${detail}`, failureCode, {
    "www-authenticate": `DPoP error="${error}", ${algsParam}`,
    ...(nonce === undefined ? {} : { "dpop-nonce": nonce }),
  });
}

let nonces = 0;

/** The test's gate: checks each call's DPoP proof, as a server interceptor. */
function gate(state: GateState): Interceptor {
  return (next) => async (req) => {
    state.requests++;
    const token = /^DPoP ([^\s,]+)$/.exec(req.header.get("authorization") ?? "")?.[1];
    if (token === undefined) {
      refuse("invalid_token", "no DPoP authorization");
    }
    const proof = req.header.get("dpop");
    if (proof === null || proof.includes(",")) {
      refuse("invalid_dpop_proof", "not one DPoP header");
    }
    let verified: Awaited<ReturnType<typeof jwtVerify>>;
    try {
      verified = await jwtVerify(proof, EmbeddedJWK, { typ: "dpop+jwt", algorithms: [...algs] });
    } catch (err) {
      refuse("invalid_dpop_proof", `proof does not verify: ${String(err)}`);
    }
    const { payload, protectedHeader } = verified;
    const jwk = protectedHeader.jwk ?? {};
    const publicMembers =
      jwk.kty === "RSA"
        ? ["e", "kty", "n"]
        : jwk.kty === "OKP"
          ? ["crv", "kty", "x"]
          : ["crv", "kty", "x", "y"];
    if (JSON.stringify(Object.keys(jwk).sort()) !== JSON.stringify(publicMembers)) {
      refuse("invalid_dpop_proof", `jwk members ${Object.keys(jwk).join(",")}`);
    }
    const url = new URL(req.url);
    url.search = "";
    url.hash = "";
    const ath = base64url.encode(createHash("sha256").update(token, "ascii").digest());
    const checks: [string, boolean][] = [
      ["htm", payload.htm === req.requestMethod],
      ["htu", payload.htu === url.href],
      ["ath", payload.ath === ath],
      ["jti", typeof payload.jti === "string" && base64url.decode(payload.jti).length >= 12],
      ["iat", typeof payload.iat === "number" && Math.abs(now() - payload.iat) <= 60],
    ];
    for (const [claim, ok] of checks) {
      if (!ok) {
        refuse("invalid_dpop_proof", `wrong ${claim}`);
      }
    }
    if (state.jtis.has(payload.jti as string)) {
      refuse("invalid_dpop_proof", "jti used before");
    }
    state.jtis.add(payload.jti as string);
    if (state.stubborn) {
      refuse("use_dpop_nonce", "nonce", `nonce-${++nonces}`);
    }
    if (state.nonce !== undefined && payload.nonce !== state.nonce) {
      refuse("use_dpop_nonce", "nonce", state.nonce);
    }
    if (state.revoked.has(token)) {
      refuse("invalid_token", "token revoked");
    }
    state.admitted.push({
      token,
      alg: protectedHeader.alg,
      requestMethod: req.requestMethod,
      payload,
    });
    const res = await next(req);
    if (state.nextNonce !== undefined) {
      res.header.set("dpop-nonce", state.nextNonce);
    }
    return res;
  };
}

let tokens = 0;

/** A provider of opaque tokens that counts its calls. */
function counting() {
  const tag = `token-${++tokens}`;
  const provider = Object.assign(
    async () => {
      provider.calls++;
      return `${tag}.fetch-${provider.calls}`;
    },
    { calls: 0, token: (n: number) => `${tag}.fetch-${n}` },
  );
  return provider;
}

/** Records the DPoP header of every request that leaves the client. */
function spy(seen: string[]): Interceptor {
  return (next) => (req) => {
    seen.push(req.header.get("dpop") ?? "");
    return next(req);
  };
}

/**
 * Reads a stream's first message before handing the response on, so that a
 * refusal the transport reports while streaming reaches the interceptors
 * before it as a rejected call, as it would from a transport that reports
 * refusals when the stream opens.
 */
function openEagerly(): Interceptor {
  return (next) => async (req) => {
    const res = await next(req);
    if (!res.stream) {
      return res;
    }
    const messages = res.message[Symbol.asyncIterator]();
    const first = await messages.next();
    return {
      ...res,
      message: (async function* () {
        if (first.done !== true) {
          yield first.value;
          yield* { [Symbol.asyncIterator]: () => messages };
        }
      })(),
    };
  };
}

/** The payload of a proof, read without verifying (the gate verifies). */
function claimsOf(proof: string): JWTPayload {
  return JSON.parse(new TextDecoder().decode(base64url.decode(proof.split(".")[1] ?? "")));
}

const options = (extra: Partial<DpopAuthOptions> = {}): DpopAuthOptions => ({
  keyPair,
  failureCode,
  ...extra,
});

describe("dpopAuth", () => {
  const state = newState();
  const server = useServer(() => ({ interceptors: [gate(state)] }));
  const methodUrl = (method: string) => `${server().url}/demo.v1.DemoService/${method}`;
  const reset = () => {
    Object.assign(state, { nonce: undefined, stubborn: false, nextNonce: undefined, requests: 0 });
    state.admitted.length = 0;
  };

  for (const transport of transports) {
    describe(transport.name, () => {
      test("every call kind carries a new proof for its method, URL and token", async () => {
        reset();
        const provider = counting();
        const seen: string[] = [];
        const client = server().client(transport, [dpopAuth(provider, options()), spy(seen)]);
        for (const kind of callKinds(transport)) {
          for (let i = 0; i < 2; i++) {
            const outcome = await call(client, kind);
            assert.ok(outcome.ok, `${kind}: ${outcome.ok ? "" : outcome.error.message}`);
          }
        }
        const calls = callKinds(transport).length * 2;
        assert.equal(state.admitted.length, calls);
        assert.equal(new Set(seen).size, calls, "a proof is never sent twice");
        assert.equal(new Set(state.admitted.map((a) => a.payload.jti)).size, calls);
        for (const [i, admitted] of state.admitted.entries()) {
          const kind = callKinds(transport)[Math.floor(i / 2)] ?? "unary";
          assert.equal(admitted.token, provider.token(1));
          assert.equal(admitted.alg, "ES256");
          assert.equal(admitted.requestMethod, "POST");
          assert.equal(admitted.payload.htm, "POST");
          assert.equal(admitted.payload.htu, methodUrl(methodOf[kind]));
          assert.equal(admitted.payload.nonce, undefined);
        }
        assert.equal(provider.calls, 1);
      });

      test("a unary call refused for a nonce is retried once with it; later calls carry it", async () => {
        reset();
        state.nonce = `nonce-${++nonces}`;
        const seen: string[] = [];
        const client = server().client(transport, [dpopAuth(counting(), options()), spy(seen)]);
        const handled = server().calls.length;
        assert.ok((await call(client, "unary")).ok);
        assert.equal(seen.length, 2);
        assert.equal(claimsOf(seen[0] ?? "").nonce, undefined);
        assert.equal(claimsOf(seen[1] ?? "").nonce, state.nonce);
        assert.equal(server().calls.length, handled + 1, "the handler ran once");
        // Remembered: the next calls carry the nonce at once.
        assert.ok((await call(client, "unary")).ok);
        assert.ok((await call(client, "server-streaming")).ok);
        assert.equal(seen.length, 4);
        assert.equal(claimsOf(seen[3] ?? "").nonce, state.nonce);
      });

      test("a nonce refusal is retried once only", async () => {
        reset();
        state.stubborn = true;
        const seen: string[] = [];
        const client = server().client(transport, [dpopAuth(counting(), options()), spy(seen)]);
        const outcome = await call(client, "unary");
        assert.equal(outcome.ok ? undefined : outcome.error.code, failureCode);
        assert.equal(seen.length, 2);
        assert.equal(state.admitted.length, 0);
      });

      for (const [how, eager] of [
        ["as it streams", []],
        ["as it opens", [openEagerly()]],
      ] as const) {
        test(`a streaming call refused for a nonce ${how} is not replayed; the next one carries it`, async () => {
          reset();
          state.nonce = `nonce-${++nonces}`;
          const seen: string[] = [];
          const client = server().client(transport, [
            dpopAuth(counting(), options()),
            ...eager,
            spy(seen),
          ]);
          const handled = server().calls.length;
          const outcome = await call(client, "server-streaming");
          assert.equal(outcome.ok ? undefined : outcome.error.code, failureCode);
          assert.equal(seen.length, 1);
          assert.equal(server().calls.length, handled);
          assert.ok((await call(client, "server-streaming")).ok);
          assert.equal(seen.length, 2);
          assert.equal(claimsOf(seen[1] ?? "").nonce, state.nonce);
        });
      }

      test("a nonce in a response's headers goes into later proofs", async () => {
        reset();
        const seen: string[] = [];
        const client = server().client(transport, [dpopAuth(counting(), options()), spy(seen)]);
        state.nextNonce = `nonce-${++nonces}`;
        assert.ok((await call(client, "unary")).ok);
        const first = state.nextNonce;
        state.nextNonce = `nonce-${++nonces}`;
        assert.ok((await call(client, "server-streaming")).ok);
        assert.ok((await call(client, "unary")).ok);
        assert.deepEqual(
          seen.map((proof) => claimsOf(proof).nonce),
          [undefined, first, state.nextNonce],
        );
      });

      test("a unary call whose token is refused is retried once with a fresh token", async () => {
        reset();
        const provider = counting();
        const seen: string[] = [];
        const client = server().client(transport, [dpopAuth(provider, options()), spy(seen)]);
        assert.ok((await call(client, "unary")).ok);
        state.revoked.add(provider.token(1));
        assert.ok((await call(client, "unary")).ok);
        assert.equal(provider.calls, 2);
        assert.equal(seen.length, 3);
        assert.equal(state.admitted.at(-1)?.token, provider.token(2));
        // Refused again: one retry only.
        state.revoked.add(provider.token(2));
        state.revoked.add(provider.token(3));
        const outcome = await call(client, "unary");
        assert.equal(outcome.ok ? undefined : outcome.error.code, failureCode);
        assert.equal(seen.length, 5);
        // A stream is never replayed.
        const stream = await call(client, "server-streaming");
        assert.equal(stream.ok ? undefined : stream.error.code, failureCode);
        assert.equal(seen.length, 6);
      });
    });
  }

  for (const alg of algs) {
    test(`proofs signed with ${alg} are admitted on every protocol`, async () => {
      reset();
      const pair = await createDpopKeyPair(alg);
      for (const transport of transports) {
        const client = server().client(transport, [
          dpopAuth(counting(), options({ keyPair: pair })),
        ]);
        for (const kind of ["unary", "server-streaming"] as const) {
          const outcome = await call(client, kind);
          assert.ok(
            outcome.ok,
            `${transport.name} ${kind}: ${outcome.ok ? "" : outcome.error.message}`,
          );
        }
      }
      assert.equal(state.admitted.length, transports.length * 2);
      assert.ok(state.admitted.every((a) => a.alg === alg));
    });
  }

  test("a nonce is kept per origin", async () => {
    reset();
    const other = await startServer({ interceptors: [gate(newState())] });
    try {
      state.nonce = `nonce-${++nonces}`;
      const seen: string[] = [];
      const interceptors = [dpopAuth(counting(), options()), spy(seen)];
      const transport = transports[0];
      assert.ok(transport);
      assert.ok((await call(server().client(transport, interceptors), "unary")).ok);
      assert.ok((await call(other.client(transport, interceptors), "unary")).ok);
      assert.deepEqual(
        seen.map((proof) => claimsOf(proof).nonce),
        [undefined, state.nonce, undefined],
      );
    } finally {
      await other.close();
    }
  });

  test("a refusal with another code is not retried", async () => {
    reset();
    state.nonce = `nonce-${++nonces}`;
    const seen: string[] = [];
    const transport = transports[0];
    assert.ok(transport);
    const interceptors = [
      dpopAuth(counting(), options({ failureCode: Code.PermissionDenied })),
      spy(seen),
    ];
    const outcome = await call(server().client(transport, interceptors), "unary");
    assert.equal(outcome.ok ? undefined : outcome.error.code, failureCode);
    assert.equal(seen.length, 1);
  });

  test("option mistakes throw a TypeError", async () => {
    const noKey = {} as DpopAuthOptions;
    assert.throws(() => dpopAuth("a.b.c", noKey), /keyPair must be/);
    assert.throws(() => dpopAuth("a.b.c", undefined as unknown as DpopAuthOptions), /keyPair/);
    const swapped = { privateKey: keyPair.publicKey, publicKey: keyPair.privateKey };
    assert.throws(() => dpopAuth("a.b.c", { keyPair: swapped }), /keyPair must be/);
    const p384 = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-384" }, false, [
      "sign",
      "verify",
    ])) as CryptoKeyPair;
    assert.throws(() => dpopAuth("a.b.c", { keyPair: p384 }), /keyPair must be/);
    const rsa1024 = (await crypto.subtle.generateKey(
      {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: 1024,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      },
      false,
      ["sign", "verify"],
    )) as CryptoKeyPair;
    assert.throws(() => dpopAuth("a.b.c", { keyPair: rsa1024 }), /keyPair must be/);
    const hmac = (await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
    ])) as CryptoKey;
    assert.throws(
      () => dpopAuth("a.b.c", { keyPair: { privateKey: hmac, publicKey: hmac } }),
      /keyPair must be/,
    );
    const mixed = {
      privateKey: keyPair.privateKey,
      publicKey: (await createDpopKeyPair("EdDSA")).publicKey,
    };
    assert.throws(() => dpopAuth("a.b.c", { keyPair: mixed }), /keyPair must be/);
    assert.throws(() => dpopAuth(42 as unknown as string, options()), /dpopAuth: pass a token/);
    assert.throws(() => dpopAuth("a.b.c", options({ refreshBefore: -1 })), /refreshBefore/);
    assert.throws(() => dpopAuth("a.b.c", options({ failureCode: 99 as Code })), /failureCode/);
    assert.throws(() => dpopAuth("two words", options()), /dpopAuth: the token is not/);
  });
});

describe("dpopAuth and the Connect protocol's GET requests", () => {
  // WhoAmI as a side-effect-free method: the Connect transport sends it as GET with useHttpGet.
  const whoAmI = {
    ...DemoService.method.whoAmI,
    idempotency: MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS,
  };
  const Idempotent = { ...DemoService, methods: [whoAmI], method: { whoAmI } };
  const state = newState();
  let server: TestServer | undefined;
  const serve = async () => {
    server ??= await startServer({
      handler: connectNodeAdapter({
        routes: (router) => router.rpc(whoAmI, () => ({ subject: "got" })),
        interceptors: [gate(state)],
      }) as never,
    });
    return server;
  };
  const client = (url: string, interceptors: Interceptor[]) => {
    const transport: Transport = createConnectTransport({
      baseUrl: url,
      httpVersion: "1.1",
      useHttpGet: true,
      interceptors,
    });
    return createClient(Idempotent, transport);
  };

  test("a GET request carries a proof for GET, for its URL without the query", async () => {
    const { url } = await serve();
    const seen: string[] = [];
    const get = client(url, [dpopAuth(counting(), options({ useHttpGet: true })), spy(seen)]);
    try {
      assert.equal((await get.whoAmI({})).subject, "got");
      assert.equal((await get.whoAmI({})).subject, "got");
    } finally {
      await server?.close();
      server = undefined;
    }
    assert.equal(state.admitted.length, 2);
    for (const admitted of state.admitted) {
      assert.equal(admitted.requestMethod, "GET");
      assert.equal(admitted.payload.htm, "GET");
      assert.equal(admitted.payload.htu, `${url}/demo.v1.DemoService/WhoAmI`);
    }
  });

  test("without useHttpGet, the proof says POST and the server refuses it", async () => {
    const { url } = await serve();
    const post = client(url, [dpopAuth(counting(), options())]);
    try {
      await assert.rejects(post.whoAmI({}), (err) => {
        assert.equal(ConnectError.from(err).code, failureCode);
        assert.match(ConnectError.from(err).message, /wrong htm/);
        return true;
      });
    } finally {
      await server?.close();
      server = undefined;
    }
  });
});
