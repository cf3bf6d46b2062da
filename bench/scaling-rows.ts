// The rows of the scaling table (scaling.ts): for each thing that grows around
// a call, an auth built with each size, its cache filled as calls would fill
// it (a token is cached on its second verification), and the calls to time.
// Every auth remembers no refusal (`maxRefusals: 0`), so that each refusal is
// decided afresh, as for a token never seen: the path on which the issuers and
// the keys are looked up.
import { generateKeyPairSync } from "node:crypto";
import { create, createFileRegistry, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createHandlerContext } from "@connectrpc/connect";
import { createJwtAuth, type JwtAuth, type JwtAuthOptions } from "connect-jwt";
import type { JWK } from "jose";
import { audience, issuer, readKey, signer, validClaims } from "./keys.js";
import { type Call, refused, type ScalingRow } from "./scaling.js";

const now = Math.floor(Date.now() / 1000);
const claims = {
  valid: (i: number) => validClaims(i, now),
  expired: (i: number) => ({ ...validClaims(i, now - 7200), exp: now - 3600 }),
  wrongAudience: (i: number) => ({ ...validClaims(i, now), aud: "another-api" }),
};
const hs = readKey("HS256");
const signHs = signer(hs);
const secretOptions = {
  secret: new TextEncoder().encode(hs.secret),
  algorithms: ["HS256"],
  issuer,
  audience,
};

/** Verifies each token twice, as two calls would: the cache admits a token on its second verification. */
async function fill(auth: JwtAuth, tokens: readonly string[]) {
  for (const token of tokens) {
    await auth.verify(token);
    await auth.verify(token);
  }
}

/** A call that cycles over `inputs`. */
function cycle<T>(inputs: readonly T[], call: (input: T) => Promise<unknown>): Call {
  return (i) => call(inputs[i % inputs.length] as T);
}

/** One row per call kind, from one set of calls per size. */
function rows(
  around: string,
  sizes: readonly number[],
  perSize: readonly Record<string, Call>[],
  reasons: Readonly<Record<string, string>> = {},
): ScalingRow[] {
  return Object.keys(perSize[0] ?? {}).map((call) => ({
    around,
    call,
    sizes,
    calls: perSize.map((calls) => calls[call] as Call),
    ...(reasons[call] === undefined ? {} : { reason: reasons[call] }),
  }));
}

/** A service of `count` unary methods, described the way generated code describes one. */
function serviceWith(count: number): DescService {
  const file = create(FileDescriptorProtoSchema, {
    name: `bench/scale/v1/scale_${count}.proto`,
    package: "bench.scale.v1",
    syntax: "proto3",
    messageType: [{ name: "Empty" }],
    service: [
      {
        name: "ScaleService",
        method: Array.from({ length: count }, (_, i) => ({
          name: `Method${i}`,
          inputType: ".bench.scale.v1.Empty",
          outputType: ".bench.scale.v1.Empty",
        })),
      },
    ],
  });
  const service = createFileRegistry(file, () => undefined).getService(
    "bench.scale.v1.ScaleService",
  );
  if (service === undefined) {
    throw new Error("the generated service is missing");
  }
  return service;
}

/** A request gate's call: a context made for the call, as Connect makes one, then the gate. */
function gateCall(auth: JwtAuth, methods: readonly DescMethod[], token: string): Call {
  const requestHeader = { authorization: `Bearer ${token}` };
  return (i) => {
    const method = methods[i % methods.length] as DescMethod;
    return auth.requestGate(
      createHandlerContext({
        service: method.parent,
        method,
        protocolName: "connect",
        requestMethod: "POST",
        url: `http://127.0.0.1/${method.parent.typeName}/${method.name}`,
        requestHeader,
      }),
    );
  };
}

/**
 * Methods with rules, through the request gate: a service of `size` methods,
 * each with a rule of its own in `rules`; one method called, or each call the
 * next method. Each call makes its context, as Connect does for each call
 * (about 2 µs of each figure: createHandlerContext in the tinybench table).
 */
export async function methodRows(
  sizes: readonly number[],
  reasons: Readonly<Record<string, string>> = {},
): Promise<ScalingRow[]> {
  const tokens = {
    valid: signHs(claims.valid(0)),
    expired: signHs(claims.expired(0)),
    wrongAudience: signHs(claims.wrongAudience(0)),
  };
  const perSize: Record<string, Call>[] = [];
  for (const size of sizes) {
    const service = serviceWith(size);
    const methods = service.methods;
    const rules = Object.fromEntries(
      methods.map((m) => [`${service.typeName}/${m.name}`, { scopes: ["notes:read"] }]),
    );
    const auth = createJwtAuth({ ...secretOptions, rules, cache: { maxRefusals: 0 } });
    await fill(auth, [tokens.valid]);
    const everyMethod = gateCall(auth, methods, tokens.valid);
    // Every method called once first: its rule is then looked up, not compiled.
    for (let i = 0; i < size; i++) {
      await everyMethod(i);
    }
    perSize.push({
      "cache hit, one method": gateCall(auth, methods.slice(0, 1), tokens.valid),
      "cache hit, each call the next method": everyMethod,
      "refusal: expired, each call the next method": refused(
        gateCall(auth, methods, tokens.expired),
      ),
      "refusal: wrong audience, each call the next method": refused(
        gateCall(auth, methods, tokens.wrongAudience),
      ),
    });
  }
  return rows("methods with rules (createHandlerContext + request gate)", sizes, perSize, reasons);
}

/**
 * The calls of the issuer and key rows cycle over this many tokens whatever
 * the size, spread over the issuers or keys, so that only their number differs.
 */
const spreadTokens = 100;

/** `spreadTokens` tokens, the `j`-th made by `make` with the `j % items.length`-th item. */
function spread<T>(items: readonly T[], make: (item: T, i: number, j: number) => string): string[] {
  return Array.from({ length: spreadTokens }, (_, j) => {
    const i = j % items.length;
    return make(items[i] as T, i, j);
  });
}

interface EsKey {
  readonly jwk: JWK;
  sign(claims: object): string;
}

function esKeys(count: number): EsKey[] {
  return Array.from({ length: count }, (_, i) => {
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const kid = `key-${i}`;
    const sign = signer({
      alg: "ES256",
      privatePem: pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    });
    return {
      jwk: { ...pair.publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" },
      sign: (c) => sign(c, { kid }),
    };
  });
}

/**
 * Issuers, through `verify`: `size` entries of `issuers`, each with a JWKS of
 * its own; each call the next of 100 tokens, of each issuer in turn.
 */
export async function issuerRows(
  sizes: readonly number[],
  reasons: Readonly<Record<string, string>> = {},
): Promise<ScalingRow[]> {
  const keys = esKeys(Math.max(...sizes));
  const issuerOf = (i: number) => `https://issuer-${i}.bench.example/`;
  const perSize: Record<string, Call>[] = [];
  for (const size of sizes) {
    const mine = keys.slice(0, size);
    const auth = createJwtAuth({
      issuers: mine.map((k, i) => ({
        issuer: issuerOf(i),
        jwks: { keys: [k.jwk] },
        algorithms: ["ES256"],
      })),
      audience,
      cache: { maxRefusals: 0 },
    });
    const tokens = (kind: keyof typeof claims) =>
      spread(mine, (k, i, j) => k.sign({ ...claims[kind](j), iss: issuerOf(i) }));
    const valid = tokens("valid");
    await fill(auth, valid);
    perSize.push(verifyCalls(auth, valid, tokens("expired"), tokens("wrongAudience")));
  }
  return rows("issuers (verify, 100 tokens of the issuers in turn)", sizes, perSize, reasons);
}

function verifyCalls(
  auth: JwtAuth,
  valid: readonly string[],
  expired: readonly string[],
  wrongAudience: readonly string[],
): Record<string, Call> {
  return {
    "cache hit": cycle(valid, auth.verify),
    "refusal: expired": refused(cycle(expired, auth.verify)),
    "refusal: wrong audience": refused(cycle(wrongAudience, auth.verify)),
  };
}

/**
 * Keys in one issuer's JWKS, through `verify`: each call the next of 100
 * tokens, signed by each key in turn; and a new token, with `cache: false`,
 * the only call that picks a key.
 */
export async function keyRows(
  sizes: readonly number[],
  reasons: Readonly<Record<string, string>> = {},
): Promise<ScalingRow[]> {
  const keys = esKeys(Math.max(...sizes));
  const perSize: Record<string, Call>[] = [];
  for (const size of sizes) {
    const mine = keys.slice(0, size);
    const options: JwtAuthOptions = {
      jwks: { keys: mine.map((k) => k.jwk) },
      algorithms: ["ES256"],
      issuer,
      audience,
    };
    const auth = createJwtAuth({ ...options, cache: { maxRefusals: 0 } });
    const uncached = createJwtAuth({ ...options, cache: false });
    const tokens = (kind: keyof typeof claims) =>
      spread(mine, (k, _, j) => k.sign(claims[kind](j)));
    const valid = tokens("valid");
    await fill(auth, valid);
    // Each key used once first: jose imports a JWK on its first use.
    for (const token of valid) {
      await uncached.verify(token);
    }
    perSize.push({
      ...verifyCalls(auth, valid, tokens("expired"), tokens("wrongAudience")),
      "a new token (cache: false: the key picked, the signature checked)": cycle(
        valid,
        uncached.verify,
      ),
    });
  }
  return rows("keys in a JWKS (verify, 100 tokens of the keys in turn)", sizes, perSize, reasons);
}

/**
 * Cached tokens, through `verify`: a cache holding `size` tokens, each call a
 * hit on the next of them; the same token on every call; and refusals of
 * tokens the cache does not hold.
 */
export async function cachedTokenRows(
  sizes: readonly number[],
  reasons: Readonly<Record<string, string>> = {},
): Promise<ScalingRow[]> {
  const largest = Math.max(...sizes);
  const valid = Array.from({ length: largest }, (_, i) => signHs(claims.valid(i)));
  const refusedTokens = (kind: "expired" | "wrongAudience") =>
    Array.from({ length: 10 }, (_, i) => signHs(claims[kind](i)));
  const perSize: Record<string, Call>[] = [];
  for (const size of sizes) {
    const auth = createJwtAuth({
      ...secretOptions,
      cache: { maxEntries: largest, maxBytes: 2 ** 30, maxRefusals: 0 },
    });
    const mine = valid.slice(0, size);
    await fill(auth, mine);
    perSize.push({
      ...verifyCalls(auth, mine, refusedTokens("expired"), refusedTokens("wrongAudience")),
      "cache hit, the same token on every call": cycle(mine.slice(0, 1), auth.verify),
    });
  }
  return rows("cached tokens (verify)", sizes, perSize, reasons);
}
