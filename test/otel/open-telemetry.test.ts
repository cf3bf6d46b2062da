// connect-jwt/otel against the OpenTelemetry SDK: a meter provider with an
// in-memory reader, a tracer provider with an in-memory span exporter, and a
// real server whose requests each run in an active span, on every transport.
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { metrics, SpanStatusCode, trace } from "@opentelemetry/api";
import { DataPointType, type MetricData } from "@opentelemetry/sdk-metrics";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { generateKeyPair, SignJWT } from "jose";
import type { AuthErrorCode, JwtAuthOptions } from "../../src/index.js";
import { type OpenTelemetryOptions, openTelemetry } from "../../src/otel/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { audience, b64url, generateTestKey, issuer, mint } from "../helpers/fixtures.js";
import {
  createTestOpenTelemetry,
  inOrder,
  type PointSummary,
  summarize,
  type TestOpenTelemetry,
} from "../helpers/otel.js";
import {
  call,
  gateAndInterceptor,
  type TestServer,
  type TransportKind,
  transports,
  useServer,
} from "../helpers/server.js";

/** Every reason code, once: the compiler refuses this list if a code is added or dropped. */
const reasonCodes = Object.keys({
  ERR_TOKEN_MISSING: true,
  ERR_AUTHORIZATION_MALFORMED: true,
  ERR_TOKEN_TOO_LARGE: true,
  ERR_TOKEN_MALFORMED: true,
  ERR_ALGORITHM_NOT_ALLOWED: true,
  ERR_KEY_NOT_FOUND: true,
  ERR_SIGNATURE_INVALID: true,
  ERR_TOKEN_EXPIRED: true,
  ERR_TOKEN_NOT_YET_VALID: true,
  ERR_TOKEN_TOO_OLD: true,
  ERR_ISSUER_INVALID: true,
  ERR_AUDIENCE_INVALID: true,
  ERR_TYPE_INVALID: true,
  ERR_CLAIM_MISSING: true,
  ERR_CLAIM_INVALID: true,
  ERR_LIFETIME_TOO_LONG: true,
  ERR_TOKEN_REVOKED: true,
  ERR_TOKEN_INVALID: true,
  ERR_INSUFFICIENT_SCOPE: true,
  ERR_ACCESS_DENIED: true,
  ERR_RULE_FAILED: true,
  ERR_KEYS_UNAVAILABLE: true,
  ERR_REVOCATION_UNAVAILABLE: true,
  ERR_DPOP_BINDING_REQUIRED: true,
  ERR_DPOP_PROOF_MISSING: true,
  ERR_DPOP_PROOF_MALFORMED: true,
  ERR_DPOP_PROOF_TOO_LARGE: true,
  ERR_DPOP_TYPE_INVALID: true,
  ERR_DPOP_ALGORITHM_NOT_ALLOWED: true,
  ERR_DPOP_KEY_INVALID: true,
  ERR_DPOP_METHOD_MISMATCH: true,
  ERR_DPOP_URL_MISMATCH: true,
  ERR_DPOP_PROOF_EXPIRED: true,
  ERR_DPOP_PROOF_NOT_YET_VALID: true,
  ERR_DPOP_ATH_MISMATCH: true,
  ERR_DPOP_KEY_MISMATCH: true,
  ERR_DPOP_SIGNATURE_INVALID: true,
  ERR_DPOP_REPLAYED: true,
  ERR_DPOP_NONCE_REQUIRED: true,
  ERR_DPOP_REPLAY_UNAVAILABLE: true,
} satisfies Record<AuthErrorCode, true>);

const service = "demo.v1.DemoService";
const key = await generateTestKey("ES256");

/** The value of `connect_jwt.protocol` for a transport. */
function protocolOf(transport: TransportKind): string {
  return transport.protocol === "grpc-web" ? "grpc_web" : transport.protocol;
}

/** A server behind createJwtAuth with openTelemetry() on the test's providers, each request in a span. */
function useTracedServer(
  otel: TestOpenTelemetry,
  options: () => JwtAuthOptions | Promise<JwtAuthOptions>,
  telemetryOptions: OpenTelemetryOptions = {},
): () => TestServer {
  return useServer(async () => ({
    ...gateAndInterceptor({
      ...(await options()),
      telemetry: openTelemetry({
        meterProvider: otel.meterProvider,
        tracerProvider: otel.tracerProvider,
        ...telemetryOptions,
      }),
    }),
    instrument: otel.instrument,
  }));
}

/** The spans of requests, and the `connect_jwt.keys.fetch` spans. */
function bySpanName(spans: ReadableSpan[]) {
  return {
    rpc: spans.filter((s) => s.name === "rpc"),
    keyFetches: spans.filter((s) => s.name === "connect_jwt.keys.fetch"),
  };
}

/** The `error.type` of every `connect_jwt.refused` event (which has no other attribute), sorted. */
function refusalReasons(spans: ReadableSpan[]): unknown[] {
  const events = spans.flatMap((s) => s.events.filter((e) => e.name === "connect_jwt.refused"));
  for (const event of events) {
    assert.deepEqual(Object.keys(event.attributes ?? {}), ["error.type"]);
  }
  return events.map((e) => e.attributes?.["error.type"]).sort();
}

function assertInstrument(metric: MetricData, type: DataPointType, unit: string) {
  assert.equal(metric.dataPointType, type, metric.descriptor.name);
  assert.equal(metric.descriptor.unit, unit, metric.descriptor.name);
  if (metric.dataPointType === DataPointType.SUM) {
    assert.equal(metric.isMonotonic, true, `${metric.descriptor.name} is a counter`);
  }
}

for (const transport of transports) {
  const protocol = protocolOf(transport);

  describe(`openTelemetry() on ${transport.name}`, () => {
    const otel = createTestOpenTelemetry();
    let testIssuer: TestIssuer;
    before(async () => {
      testIssuer = await createTestIssuer();
    });
    after(() => testIssuer.close());
    const server = useTracedServer(otel, () => ({
      issuerUrl: testIssuer.issuer,
      audience: testIssuer.audience,
      publicMethods: [`${service}/Ping`],
    }));

    test("each decision, cache lookup and key fetch, with its unit and attributes", async () => {
      const client = server().client(transport);
      const token = await testIssuer.sign({ sub: "alice" });
      const expired = await testIssuer.sign({ sub: "bob" }, { expiresIn: -60 });
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(await call(client, "unary", `Bearer ${token}`), {
          ok: true,
          subject: "alice",
        });
      }
      assert.equal((await call(client, "unary")).ok, false);
      assert.equal((await call(client, "unary", `Bearer ${expired}`)).ok, false);
      assert.equal((await client.ping({ text: "hi" })).text, "hi");

      const rpc = { "rpc.service": service, "connect_jwt.protocol": protocol };
      const duration = await otel.metric("connect_jwt.authentication.duration");
      assertInstrument(duration, DataPointType.HISTOGRAM, "s");
      assert.deepEqual(
        summarize(duration),
        inOrder([
          {
            attributes: { ...rpc, "connect_jwt.outcome": "admitted", "rpc.method": "WhoAmI" },
            count: 3,
          },
          {
            attributes: { ...rpc, "connect_jwt.outcome": "admitted", "rpc.method": "Ping" },
            count: 1,
          },
          {
            attributes: {
              ...rpc,
              "connect_jwt.outcome": "refused",
              "error.type": "ERR_TOKEN_MISSING",
              "rpc.method": "WhoAmI",
            },
            count: 1,
          },
          {
            attributes: {
              ...rpc,
              "connect_jwt.outcome": "refused",
              "error.type": "ERR_TOKEN_EXPIRED",
              "rpc.method": "WhoAmI",
            },
            count: 1,
          },
        ]),
      );

      // A token is cached when it verifies a second time: miss, miss, hit.
      // The expired token is a miss; calls without a token ask no cache.
      const lookups = await otel.metric("connect_jwt.token_cache.lookups");
      assertInstrument(lookups, DataPointType.SUM, "");
      assert.deepEqual(
        summarize(lookups),
        inOrder([
          { attributes: { "connect_jwt.cache.result": "hit" }, count: 1 },
          { attributes: { "connect_jwt.cache.result": "miss" }, count: 3 },
        ]),
      );

      // The first call with a token fetched the discovery document, then the JWKS.
      const fetched: PointSummary[] = [
        {
          attributes: { "connect_jwt.keys.result": "success", "server.address": "127.0.0.1" },
          count: 2,
        },
      ];
      const fetches = await otel.metric("connect_jwt.keys.fetches");
      assertInstrument(fetches, DataPointType.SUM, "");
      assert.deepEqual(summarize(fetches), fetched);
      const fetchDuration = await otel.metric("connect_jwt.keys.fetch.duration");
      assertInstrument(fetchDuration, DataPointType.HISTOGRAM, "s");
      assert.deepEqual(summarize(fetchDuration), fetched);

      const spans = bySpanName(await otel.spans());
      assert.equal(spans.rpc.length, 6);
      assert.deepEqual(refusalReasons(spans.rpc), ["ERR_TOKEN_EXPIRED", "ERR_TOKEN_MISSING"]);
      assert.deepEqual(
        spans.keyFetches.map((s) => [s.attributes, s.status.code]),
        [
          [
            {
              "url.full": `${testIssuer.issuer}/.well-known/openid-configuration`,
              "server.address": "127.0.0.1",
            },
            SpanStatusCode.UNSET,
          ],
          [{ "url.full": testIssuer.jwksUrl, "server.address": "127.0.0.1" }, SpanStatusCode.UNSET],
        ],
      );
      // Both inside the span of the call that needed the keys.
      const rpcIds = spans.rpc.map((s) => s.spanContext().spanId);
      for (const fetch of spans.keyFetches) {
        assert.ok(rpcIds.includes(fetch.parentSpanContext?.spanId ?? ""), "a child of an rpc span");
      }
      // No user.id without recordSubject.
      assert.ok(spans.rpc.every((s) => !("user.id" in s.attributes)));
    });
  });

  describe(`openTelemetry() on ${transport.name}, when the JWKS cannot be fetched`, () => {
    const otel = createTestOpenTelemetry();
    let jwks: Server;
    let jwksUrl = "";
    before(async () => {
      jwks = createServer((_req, res) => res.writeHead(503).end());
      await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
      jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    });
    after(() => new Promise<void>((resolve) => jwks.close(() => resolve())));
    const server = useTracedServer(otel, () => ({ jwksUrl, issuer, audience }));

    test("the call is unavailable, the fetch failed, and its span has an error status", async () => {
      const client = server().client(transport);
      const token = await mint(key);
      for (let i = 0; i < 2; i++) {
        const outcome = await call(client, "unary", `Bearer ${token}`);
        assert.equal(outcome.ok, false);
      }

      const duration = await otel.metric("connect_jwt.authentication.duration");
      assert.deepEqual(summarize(duration), [
        {
          attributes: {
            "connect_jwt.outcome": "unavailable",
            "error.type": "ERR_KEYS_UNAVAILABLE",
            "rpc.service": service,
            "rpc.method": "WhoAmI",
            "connect_jwt.protocol": protocol,
          },
          count: 2,
        },
      ]);
      // One fetch: the second call came within the cooldown.
      const failed: PointSummary[] = [
        {
          attributes: { "connect_jwt.keys.result": "failure", "server.address": "127.0.0.1" },
          count: 1,
        },
      ];
      assert.deepEqual(summarize(await otel.metric("connect_jwt.keys.fetches")), failed);
      assert.deepEqual(summarize(await otel.metric("connect_jwt.keys.fetch.duration")), failed);

      const spans = bySpanName(await otel.spans());
      assert.equal(spans.keyFetches.length, 1);
      const [fetch] = spans.keyFetches as [ReadableSpan];
      assert.deepEqual(fetch.attributes, { "url.full": jwksUrl, "server.address": "127.0.0.1" });
      assert.equal(fetch.status.code, SpanStatusCode.ERROR);
      assert.equal(fetch.status.message, `${jwksUrl} answered HTTP 503`);
      assert.deepEqual(refusalReasons(spans.rpc), ["ERR_KEYS_UNAVAILABLE", "ERR_KEYS_UNAVAILABLE"]);
    });
  });
}

describe("openTelemetry() and a flood of distinct forged tokens", () => {
  const otel = createTestOpenTelemetry();
  const server = useTracedServer(otel, () => ({
    jwks: { keys: [key.publicJwk] },
    issuer,
    audience,
  }));
  const transport = transports.find((t) => t.protocol === "grpc") as TransportKind;

  test("1,000 forged tokens add no more attribute sets than there are reason codes", async () => {
    const attacker = await generateKeyPair("ES256");
    const now = Math.floor(Date.now() / 1000);
    const forge = (i: number): Promise<string> | string => {
      const claims = { iss: issuer, aud: audience, sub: `victim-${i}`, iat: now, exp: now + 300 };
      const signed = (payload: object, header: object) =>
        new SignJWT({ ...claims, ...payload })
          .setProtectedHeader({ alg: "ES256", kid: key.kid, ...header })
          .sign(attacker.privateKey);
      switch (i % 7) {
        case 0: // not a JWT at all
          return `${b64url(`junk-${i}`)}.${b64url(`more-${i}`)}.${b64url(`sig-${i}`)}`;
        case 1: // the attacker's own key under our key's id
          return signed({ nonce: `nonce-${i}` }, {});
        case 2: // an unknown key id
          return signed({}, { kid: `kid-${i}` });
        case 3: // a made-up issuer
          return signed({ iss: `https://evil-${i}.example/` }, {});
        case 4: // another audience
          return signed({ aud: `aud-${i}` }, {});
        case 5: // expired
          return signed({ exp: now - 3600 - i }, {});
        default: // alg none
          return `${b64url({ alg: "none", n: i })}.${b64url({ ...claims, jti: `jti-${i}` })}.`;
      }
    };
    const tokens = await Promise.all(Array.from({ length: 1000 }, (_, i) => forge(i)));
    assert.equal(new Set(tokens).size, 1000);
    const client = server().client(transport);
    for (let i = 0; i < tokens.length; i += 50) {
      const outcomes = await Promise.all(
        tokens.slice(i, i + 50).map((t) => call(client, "unary", `Bearer ${t}`)),
      );
      assert.ok(outcomes.every((o) => !o.ok));
    }

    const points = summarize(await otel.metric("connect_jwt.authentication.duration"));
    assert.ok(points.length <= reasonCodes.length, `${points.length} attribute sets`);
    assert.equal(
      points.reduce((sum, p) => sum + p.count, 0),
      1000,
    );
    for (const { attributes } of points) {
      assert.deepEqual(
        { ...attributes, "error.type": undefined },
        {
          "connect_jwt.outcome": "refused",
          "error.type": undefined,
          "rpc.service": service,
          "rpc.method": "WhoAmI",
          "connect_jwt.protocol": "grpc",
        },
      );
      assert.ok(reasonCodes.includes(String(attributes["error.type"])));
    }
    assert.ok(summarize(await otel.metric("connect_jwt.token_cache.lookups")).length <= 2);
    const spans = await otel.spans();
    assert.equal(refusalReasons(spans).length, 1000);
    // Not one of the tokens, nor their issuers, audiences, key ids or subjects, got anywhere.
    const exported = JSON.stringify([await otel.collect(), spans.map(describeSpan)]);
    for (const made of ["evil-", "aud-", "kid-", "victim-", "nonce-", "jti-"]) {
      assert.ok(!exported.includes(made), `${made} is in the exported data`);
    }
    for (const segment of tokens.flatMap((t) => t.split(".")).filter((s) => s.length > 0)) {
      assert.ok(!exported.includes(segment), `${segment.slice(0, 20)} is in the exported data`);
    }
  });
});

/** What an exporter sends of a span: its name, attributes, events and status. */
function describeSpan(span: ReadableSpan) {
  return {
    name: span.name,
    attributes: span.attributes,
    events: span.events.map((e) => ({ name: e.name, attributes: e.attributes })),
    status: span.status,
  };
}

for (const recordSubject of [false, true]) {
  describe(`openTelemetry({ recordSubject: ${recordSubject} }) and secrets`, () => {
    const otel = createTestOpenTelemetry();
    const server = useTracedServer(
      otel,
      () => ({
        jwks: { keys: [key.publicJwk] },
        issuer,
        audience,
        rules: { [`${service}/ListNotes`]: { scopes: ["notes:admin"] } },
      }),
      { recordSubject },
    );

    test("no token, header or claim value in any metric, span or event", async () => {
      const claims = {
        sub: "subject-5c1e0d",
        jti: "jti-8b0f27",
        email: "carol-3d9a@example.com",
        name: "Carol Secret-Name",
        scope: "notes:read",
      };
      const token = await mint(key, { claims });
      const [header = "", payload = "", signature = ""] = token.split(".");
      const signed = JSON.parse(Buffer.from(payload, "base64url").toString()) as object;
      const tampered = `${header}.${b64url({ ...signed, sub: "mallory-71aa" })}.${signature}`;
      const client = server().client(transports[0] as TransportKind);
      for (let i = 0; i < 3; i++) {
        assert.equal((await call(client, "unary", `Bearer ${token}`)).ok, true);
      }
      assert.equal((await call(client, "server-streaming", `Bearer ${token}`)).ok, false);
      assert.equal((await call(client, "unary", `Bearer ${tampered}`)).ok, false);

      const spans = await otel.spans();
      const exported = JSON.stringify([await otel.collect(), spans.map(describeSpan)]);
      const secrets = [token, header, payload, signature, tampered, "Bearer", "mallory-71aa"];
      for (const value of [...secrets, claims.jti, claims.email, claims.name, claims.scope]) {
        assert.ok(!exported.includes(value), `${value.slice(0, 20)} is in the exported data`);
      }
      assert.equal(exported.includes(claims.sub), recordSubject);
      assert.deepEqual(refusalAttributes(spans), [
        {
          "error.type": "ERR_INSUFFICIENT_SCOPE",
          ...(recordSubject ? { "user.id": claims.sub } : {}),
        },
        { "error.type": "ERR_SIGNATURE_INVALID" },
      ]);
      const admitted = spans.filter((s) => s.name === "rpc" && s.events.length === 0);
      assert.equal(admitted.length, 3);
      for (const span of admitted) {
        assert.equal(span.attributes["user.id"], recordSubject ? claims.sub : undefined);
      }
    });
  });
}

/** The attributes of every `connect_jwt.refused` event, by `error.type`. */
function refusalAttributes(spans: ReadableSpan[]) {
  return spans
    .flatMap((s) => s.events.filter((e) => e.name === "connect_jwt.refused"))
    .map((e) => e.attributes ?? {})
    .sort((a, b) => String(a["error.type"]).localeCompare(String(b["error.type"])));
}

test("only src/otel imports @opentelemetry/api: the rest of the package runs without it", async () => {
  const src = new URL("../../src/", import.meta.url);
  const importers: string[] = [];
  for (const file of await readdir(src, { recursive: true })) {
    if (
      file.endsWith(".ts") &&
      /from "@opentelemetry\//.test(await readFile(new URL(file, src), "utf8"))
    ) {
      importers.push(file);
    }
  }
  assert.deepEqual(importers, ["otel/open-telemetry.ts"]);
});

describe("openTelemetry() options", () => {
  test("the global providers by default", async () => {
    const otel = createTestOpenTelemetry();
    metrics.setGlobalMeterProvider(otel.meterProvider);
    trace.setGlobalTracerProvider(otel.tracerProvider);
    try {
      const telemetry = openTelemetry();
      telemetry.cacheLookup(true);
      telemetry.keyFetch(new URL("https://auth.example.com/jwks.json")).end();
    } finally {
      metrics.disable();
      trace.disable();
    }
    const lookups = await otel.metric("connect_jwt.token_cache.lookups");
    assert.deepEqual(summarize(lookups), [
      { attributes: { "connect_jwt.cache.result": "hit" }, count: 1 },
    ]);
    const spans = await otel.spans();
    assert.deepEqual(
      spans.map((s) => [s.name, s.attributes["server.address"]]),
      [["connect_jwt.keys.fetch", "auth.example.com"]],
    );
  });

  test("url.full leaves out credentials and the query", async () => {
    const otel = createTestOpenTelemetry();
    const telemetry = openTelemetry({ tracerProvider: otel.tracerProvider });
    telemetry.keyFetch(new URL("https://user:pass@auth.example.com/keys?api_key=k-1")).end();
    const [span] = await otel.spans();
    assert.equal(span?.attributes["url.full"], "https://auth.example.com/keys");
  });

  test("mistakes throw a TypeError that names the option", () => {
    assert.throws(() => openTelemetry({ meterprovider: {} } as OpenTelemetryOptions), {
      name: "TypeError",
      message: "openTelemetry: unknown option `meterprovider`; did you mean `meterProvider`?",
    });
    assert.throws(() => openTelemetry({ recordSubject: "yes" as unknown as boolean }), {
      name: "TypeError",
      message: "openTelemetry: recordSubject must be true or false",
    });
    assert.throws(() => openTelemetry({ meterProvider: {} as never }), {
      name: "TypeError",
      message: "openTelemetry: meterProvider must be a MeterProvider, e.g. the SDK's",
    });
  });
});
