import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import fc from "fast-check";
import {
  AuthError,
  createJwtAuth,
  type DeniedEvent,
  parseBearerToken,
} from "../../../src/index.js";
import { call, methodOf, transports, useServer } from "../../helpers/server.js";
import { claims, keys, serverOptions, subject, wireOf } from "./cases.js";
import { craft, enc } from "./craft.js";

// Fuzzing with fast-check: (a) random `authorization` values and (b) mutations
// of a valid token, checked on the request path in-process (parseBearerToken
// and the verifier, thousands of cases) and over the wire on every transport
// (a few hundred calls). The server must never answer Internal or Unknown,
// never crash, and never accept anything but the untouched valid token.
//
// FUZZ_RUNS scales it: the number of cases of each in-process property
// (default 1000, five properties); each transport makes FUZZ_RUNS / 10 calls
// per property (two), at most 10000 unless FUZZ_WIRE_RUNS says otherwise.
// FUZZ_SEED replays a run.

const runs = Number(process.env.FUZZ_RUNS) || 1000;
const wireRuns = Number(process.env.FUZZ_WIRE_RUNS) || Math.min(10_000, Math.ceil(runs / 10));
const seed = process.env.FUZZ_SEED === undefined ? {} : { seed: Number(process.env.FUZZ_SEED) };

const auth = createJwtAuth(serverOptions());
const maxTokenSize = 8192;

// ---- What is sent -------------------------------------------------------------

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const b64urlChar = fc.constantFrom(...alphabet);
const segment = fc.string({ unit: b64urlChar, maxLength: 48 });
const oddChar = fc.constantFrom(...`${alphabet}.=+/ \t~!%,;:"\\{}`);

/** Headers and payloads that decode and are mostly plausible, so that random tokens reach the later checks. */
const likely = <T, U>(usual: fc.Arbitrary<T>, other: fc.Arbitrary<U>) =>
  fc.oneof({ weight: 5, arbitrary: usual }, { weight: 1, arbitrary: other });
const jsonHeader = fc
  .tuple(
    fc.record({
      alg: likely(
        fc.constantFrom("ES256", "RS256"),
        fc.oneof(fc.constantFrom("PS256", "HS256", "none", "EdDSA"), fc.jsonValue()),
      ),
      kid: likely(fc.constantFrom(keys.es256.kid, keys.rs256.kid), fc.jsonValue()),
      typ: likely(fc.constant("JWT"), fc.jsonValue()),
    }),
    fc.dictionary(
      fc.constantFrom("crit", "b64", "cty", "jwk", "jku", "x5u", "x5c", "zip", "__proto__"),
      fc.jsonValue(),
      { maxKeys: 2 },
    ),
  )
  .map(([header, extra]) => ({ ...header, ...extra }));
const jsonPayload = fc
  .dictionary(
    fc.constantFrom("exp", "nbf", "iat", "iss", "aud", "sub", "scope", "__proto__"),
    fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null), fc.jsonValue()),
    { maxKeys: 2 },
  )
  .map((extra) => ({ ...claims(), ...extra }));

/** (a) Random `authorization` values. */
const headerValue: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 120 }),
  fc
    .tuple(
      fc.constantFrom("Bearer ", "bearer ", "BEARER  ", "Bearer", "Bearer\t", "Basic ", ""),
      fc.array(segment, { maxLength: 5 }),
      fc.constantFrom(".", "..", ",", " "),
    )
    .map(([scheme, segments, separator]) => scheme + segments.join(separator)),
  fc.string({ unit: fc.constantFrom(".", "a", "-", "_", "=", " ", "Bearer "), maxLength: 40 }),
  fc
    .tuple(fc.oneof(jsonHeader, fc.jsonValue()), fc.oneof(jsonPayload, fc.jsonValue()), segment)
    .map(
      ([h, p, s]) =>
        `Bearer ${enc(JSON.stringify(h) ?? "null")}.${enc(JSON.stringify(p) ?? "null")}.${s}`,
    ),
);

/** One change to a token; positions are taken modulo the lengths at hand. */
type Mutation =
  | { op: "flipBit"; segment: number; byte: number; bit: number }
  | { op: "substitute" | "insert"; segment: number; at: number; text: string }
  | { op: "swap"; segment: number; other: number }
  | { op: "duplicate" | "remove"; segment: number }
  | { op: "base64"; segment: number; padded: boolean }
  | { op: "pad"; segment: number; count: number }
  | { op: "spareBits"; segment: number; bits: number }
  | { op: "append" | "prepend"; text: string }
  | { op: "truncate" | "flipCase"; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    op: fc.constant("flipBit" as const),
    segment: fc.nat(2),
    byte: fc.nat(),
    bit: fc.nat(7),
  }),
  fc.record({
    op: fc.constantFrom("substitute" as const, "insert" as const),
    segment: fc.nat(2),
    at: fc.nat(),
    text: fc.string({ unit: oddChar, minLength: 1, maxLength: 3 }),
  }),
  fc.record({ op: fc.constant("swap" as const), segment: fc.nat(2), other: fc.nat(2) }),
  fc.record({ op: fc.constantFrom("duplicate" as const, "remove" as const), segment: fc.nat(2) }),
  fc.record({ op: fc.constant("base64" as const), segment: fc.nat(2), padded: fc.boolean() }),
  fc.record({
    op: fc.constant("pad" as const),
    segment: fc.nat(2),
    count: fc.integer({ min: 1, max: 2 }),
  }),
  fc.record({ op: fc.constant("spareBits" as const), segment: fc.nat(2), bits: fc.nat(15) }),
  fc.record({
    op: fc.constantFrom("append" as const, "prepend" as const),
    text: fc.string({ unit: oddChar, minLength: 1, maxLength: 4 }),
  }),
  fc.record({ op: fc.constantFrom("truncate" as const, "flipCase" as const), at: fc.nat() }),
);

function mutate(token: string, m: Mutation): string {
  const segs = token.split(".");
  const i = "segment" in m ? m.segment % segs.length : 0;
  const seg = segs[i] ?? "";
  switch (m.op) {
    case "flipBit": {
      const bytes = Buffer.from(seg, "base64url");
      if (bytes.length === 0) return token;
      const at = m.byte % bytes.length;
      bytes[at] = (bytes[at] ?? 0) ^ (1 << m.bit);
      segs[i] = bytes.toString("base64url");
      break;
    }
    case "substitute":
    case "insert": {
      const at = seg.length === 0 ? 0 : m.at % seg.length;
      const rest = m.op === "substitute" ? seg.slice(at + 1) : seg.slice(at);
      segs[i] = seg.slice(0, at) + m.text + rest;
      break;
    }
    case "swap": {
      const j = m.other % segs.length;
      [segs[i], segs[j]] = [segs[j] ?? "", seg];
      break;
    }
    case "duplicate":
      segs.splice(i, 0, seg);
      break;
    case "remove":
      segs.splice(i, 1);
      break;
    case "base64": {
      const standard = Buffer.from(seg, "base64url").toString("base64");
      segs[i] = m.padded ? standard : standard.replace(/=+$/, "");
      break;
    }
    case "pad":
      segs[i] = seg + "=".repeat(m.count);
      break;
    case "spareBits": {
      // The unused low bits of the last character: same bytes, another string.
      const spare = seg.length % 4 === 2 ? 4 : seg.length % 4 === 3 ? 2 : 0;
      const last = alphabet.indexOf(seg.slice(-1));
      if (spare === 0 || last < 0) return token;
      const index = (last & ~((1 << spare) - 1)) | (m.bits & ((1 << spare) - 1));
      segs[i] = seg.slice(0, -1) + alphabet.charAt(index);
      break;
    }
    case "append":
      return token + m.text;
    case "prepend":
      return m.text + token;
    case "truncate":
      return token.slice(0, m.at % (token.length + 1));
    case "flipCase": {
      const at = m.at % token.length;
      const c = token.charAt(at);
      const flipped = c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase();
      return token.slice(0, at) + flipped + token.slice(at + 1);
    }
  }
  return segs.join(".");
}

const mutations = fc.array(mutation, { minLength: 1, maxLength: 3 });
const signer = fc.constantFrom("ES256" as const, "RS256" as const);

/** The valid tokens mutations start from, re-minted every minute so that long runs stay valid. */
const originals = { at: 0, ES256: "", RS256: "" };
function original(alg: "ES256" | "RS256"): string {
  if (Date.now() - originals.at > 60_000) {
    originals.at = Date.now();
    originals.ES256 = craft(
      keys.es256,
      { alg: "ES256", kid: keys.es256.kid, typ: "JWT" },
      claims(),
    );
    originals.RS256 = craft(
      keys.rs256,
      { alg: "RS256", kid: keys.rs256.kid, typ: "JWT" },
      claims(),
    );
  }
  return originals[alg];
}

// ---- The oracle -------------------------------------------------------------------

type Decision = { ok: true; token: string } | { ok: false; error: AuthError };

/** The request path in-process: the header parser, then the verifier. Rejects only with AuthError. */
async function decide(value: string | null): Promise<Decision> {
  try {
    const token = parseBearerToken(value, maxTokenSize);
    await auth.verify(token);
    return { ok: true, token };
  } catch (err) {
    return { ok: false, error: asAuthError(err) };
  }
}

function asAuthError(err: unknown): AuthError {
  assert.ok(err instanceof AuthError, `not an AuthError: ${String(err)}`);
  return err;
}

/** A refusal of a credential: a known authentication reason, its fixed message, never the catch-all. */
function assertPlainRefusal(error: AuthError): void {
  assert.notEqual(error.code, "ERR_TOKEN_INVALID", "an unexpected error reached the catch-all");
  assert.ok(!error.unavailable && !error.forbidden, error.code);
  assert.equal(error.message, wireOf(error.code).message, error.code);
}

/** What an HTTP client makes of a header value: leading and trailing SP and HTAB are not part of it. */
const onTheWire = (value: string) => value.replace(/^[ \t]+|[ \t]+$/g, "");

const options = (numRuns: number) => ({ numRuns, ...seed });

// ---- In-process properties -----------------------------------------------------------

describe("fuzz, in-process", () => {
  test(`(a) random authorization values are refused with a known reason (${runs} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(headerValue, async (value) => {
        const decision = await decide(value);
        assert.equal(decision.ok, false, `accepted ${JSON.stringify(value)}`);
        if (!decision.ok) assertPlainRefusal(decision.error);
      }),
      options(runs),
    );
  });

  test(`(b) mutated tokens on the request path: a known reason, never a crash (${runs} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(signer, mutations, async (alg, ms) => {
        const mutated = ms.reduce(mutate, original(alg));
        const decision = await decide(`Bearer ${mutated}`);
        if (!decision.ok) assertPlainRefusal(decision.error);
      }),
      options(runs),
    );
  });

  test(`(b) mutated tokens on the request path: only the untouched token passes (${runs} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(signer, mutations, async (alg, ms) => {
        const token = original(alg);
        const decision = await decide(`Bearer ${ms.reduce(mutate, token)}`);
        // RFC 6750 allows several spaces before the token; the parser drops them.
        if (decision.ok) assert.equal(decision.token, token, "a changed token was accepted");
      }),
      // The unused bits of the signature's last character: another string, the same bytes.
      { ...options(runs), examples: [["ES256", [{ op: "spareBits", segment: 2, bits: 1 }]]] },
    );
  });

  test(`(b) mutated tokens given to auth.verify: a known reason, never a crash (${runs} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(signer, mutations, async (alg, ms) => {
        try {
          await auth.verify(ms.reduce(mutate, original(alg)));
        } catch (err) {
          assertPlainRefusal(asAuthError(err));
        }
      }),
      options(runs),
    );
  });

  test(`(b) mutated tokens given to auth.verify: only the untouched token passes (${runs} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(signer, mutations, async (alg, ms) => {
        const token = original(alg);
        const mutated = ms.reduce(mutate, token);
        const accepted = await auth.verify(mutated).then(
          () => true,
          () => false,
        );
        assert.ok(!accepted || mutated === token, `accepted ${JSON.stringify(mutated)}`);
      }),
      {
        ...options(runs),
        examples: [
          ["ES256", [{ op: "pad", segment: 2, count: 2 }]],
          ["RS256", [{ op: "append", text: " " }]],
        ],
      },
    );
  });
});

// ---- Over the wire ---------------------------------------------------------------------

describe("fuzz, over the wire", () => {
  const denied: DeniedEvent[] = [];
  const server = useServer(() => {
    const wired = createJwtAuth(serverOptions({ onDenied: (e) => denied.push(e) }));
    return Promise.resolve({ interceptors: [wired.interceptor], requestGate: wired.requestGate });
  });
  const kind = fc.constantFrom("unary" as const, "server-streaming" as const);

  for (const transport of transports) {
    test(`${transport.name}: ${wireRuns} random values and ${wireRuns} mutated tokens`, async () => {
      const client = server().client(transport);
      const acceptedMutants: string[] = [];

      /** One call: never Internal or Unknown, the wire agrees with the core, nothing reaches a refused handler. */
      async function check(
        value: string,
        k: "unary" | "server-streaming",
        original?: string,
        label = JSON.stringify(value),
      ) {
        const calls = server().calls.length;
        denied.length = 0;
        const outcome = await call(client, k, value);
        const expected = await decide(onTheWire(value));
        if (outcome.ok) {
          assert.equal(server().calls.length, calls + 1);
          assert.equal(outcome.subject, subject);
          if (original === undefined || !expected.ok || expected.token !== original) {
            acceptedMutants.push(label);
          }
          return;
        }
        const { code, rawMessage, metadata } = outcome.error;
        assert.notEqual(code, Code.Internal, `Internal for ${JSON.stringify(value)}`);
        assert.notEqual(code, Code.Unknown, `Unknown for ${JSON.stringify(value)}`);
        assert.equal(server().calls.length, calls, "the handler ran");
        assert.ok(
          !expected.ok,
          `the core accepts what the server refused: ${JSON.stringify(value)}`,
        );
        if (expected.ok) return;
        const reason = expected.error.code;
        assert.deepEqual(
          {
            code: Code[code],
            message: rawMessage,
            challenge: metadata.get("www-authenticate"),
            denied: denied.map((e) => [e.reason, e.method]),
          },
          {
            code: Code[Code.PermissionDenied],
            ...wireOf(reason),
            denied: [[reason, `demo.v1.DemoService/${methodOf[k]}`]],
          },
          JSON.stringify(value),
        );
      }

      await fc.assert(
        fc.asyncProperty(headerValue, kind, (value, k) => check(value, k)),
        options(wireRuns),
      );
      await fc.assert(
        fc.asyncProperty(signer, mutations, kind, (alg, ms, k) => {
          const mutated = ms.reduce(mutate, original(alg));
          const label = `${alg} ${JSON.stringify(ms)}: ...${mutated.slice(-12)}`;
          return check(`Bearer ${mutated}`, k, original(alg), label);
        }),
        {
          ...options(wireRuns),
          examples: [["RS256", [{ op: "spareBits", segment: 2, bits: 3 }], "unary"]],
        },
      );
      // Still serving.
      const normal = await call(client, "unary", `Bearer ${original("ES256")}`);
      assert.deepEqual(normal, { ok: true, subject });
      assert.deepEqual(acceptedMutants, [], "changed tokens were accepted");
    });
  }
});
