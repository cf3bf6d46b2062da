// The reference Node gRPC client, @grpc/grpc-js, against our server: it shares
// no code with connect-es, so it checks what a gRPC peer that is not Connect
// sees on the wire (status codes, messages and trailers).
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import {
  Client,
  type ClientDuplexStream,
  type ClientReadableStream,
  credentials,
  Metadata,
  type MethodDefinition,
  type ServiceDefinition,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { createJwtAuth, type JwtAuthOptions } from "../../src/index.js";
import { audience, generateTestKey, issuer, mint } from "../helpers/fixtures.js";
import {
  type CallKind,
  gateAndInterceptor,
  methodOf,
  type TestServer,
  useServer,
} from "../helpers/server.js";

const key = await generateTestKey("ES256");
const subject = "subject-grpc-js";
const bearer = (token: string) => `Bearer ${token}`;
const valid = () => mint(key, { claims: { sub: subject } });

const options: JwtAuthOptions = { jwks: { keys: [key.publicJwk] }, issuer, audience };

// proto-loader finds connectjwt/v1/auth.proto under "proto" and ships
// google/protobuf/descriptor.proto itself.
const packageDefinition = loadSync("demo/v1/demo.proto", { includeDirs: ["proto"] });
const service = packageDefinition["demo.v1.DemoService"] as ServiceDefinition;

type Message = Record<string, unknown>;

function method(name: string): MethodDefinition<Message, Message> {
  const definition = service[name];
  assert.ok(definition, `DemoService has no method ${name}`);
  return definition as MethodDefinition<Message, Message>;
}

const kinds: readonly CallKind[] = ["unary", "server-streaming", "client-streaming", "bidi"];

/** The outcome of one grpc-js call: the subject the handler answered with, or the error. */
type Outcome = { ok: true; subject: string } | { ok: false; error: ServiceError };

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && "code" in err && "metadata" in err;
}

/** collect reads a response stream to its end. */
function collect(stream: ClientReadableStream<Message> | ClientDuplexStream<Message, Message>) {
  return new Promise<Message[]>((resolve, reject) => {
    const messages: Message[] = [];
    stream.on("data", (message: Message) => messages.push(message));
    stream.on("error", reject);
    stream.on("end", () => resolve(messages));
  });
}

function subjects(messages: Message[], pick: (m: Message) => unknown): string {
  return [...new Set(messages.map((m) => String(pick(m) ?? "")))].join(",");
}

/**
 * grpcCall makes one call of `kind` with grpc-js, with the given `authorization`
 * metadata (none when undefined), consumes the whole response and never throws
 * a gRPC status: it returns it.
 */
async function grpcCall(client: Client, kind: CallKind, authorization?: string): Promise<Outcome> {
  const metadata = new Metadata();
  if (authorization !== undefined) {
    metadata.set("authorization", authorization);
  }
  const def = method(methodOf[kind]);
  const path = def.path;
  const { requestSerialize: ser, responseDeserialize: de } = def;
  const callOptions = { deadline: Date.now() + 10_000 };
  try {
    switch (kind) {
      case "unary": {
        const res = await new Promise<Message>((resolve, reject) => {
          client.makeUnaryRequest(path, ser, de, {}, metadata, callOptions, (err, value) =>
            err || value === undefined ? reject(err) : resolve(value),
          );
        });
        return { ok: true, subject: String(res.subject) };
      }
      case "server-streaming": {
        const stream = client.makeServerStreamRequest(path, ser, de, {}, metadata, callOptions);
        const notes = await collect(stream);
        return { ok: true, subject: subjects(notes, (m) => (m.note as Message | null)?.owner) };
      }
      case "client-streaming": {
        const res = await new Promise<Message>((resolve, reject) => {
          const stream = client.makeClientStreamRequest(
            path,
            ser,
            de,
            metadata,
            callOptions,
            (err, value) => (err || value === undefined ? reject(err) : resolve(value)),
          );
          stream.write({ text: "x" });
          stream.write({ text: "x" });
          stream.end();
        });
        return { ok: true, subject: String(res.owner) };
      }
      case "bidi": {
        const stream = client.makeBidiStreamRequest(path, ser, de, metadata, callOptions);
        const done = collect(stream);
        stream.write({ text: "x" });
        stream.write({ text: "x" });
        stream.end();
        return { ok: true, subject: subjects(await done, (m) => m.subject) };
      }
    }
  } catch (err) {
    if (isServiceError(err)) {
      return { ok: false, error: err };
    }
    throw err;
  }
}

/** useGrpcClient opens a grpc-js channel to the test server, closed after the enclosing tests. */
function useGrpcClient(server: () => TestServer): () => Client {
  let client: Client | undefined;
  after(() => client?.close());
  return () => {
    client ??= new Client(new URL(server().url).host, credentials.createInsecure());
    return client;
  };
}

function flipSignature(token: string): string {
  const [header, payload, signature = ""] = token.split(".");
  const i = Math.floor(signature.length / 2);
  const flipped = signature[i] === "A" ? "B" : "A";
  return `${header}.${payload}.${signature.slice(0, i)}${flipped}${signature.slice(i + 1)}`;
}

const refusals = [
  {
    name: "no token",
    authorization: async () => undefined,
    details: "missing bearer token",
    challenge: "Bearer",
  },
  {
    name: "expired token",
    authorization: async () =>
      bearer(
        await mint(key, { claims: { sub: subject, exp: Math.floor(Date.now() / 1000) - 3600 } }),
      ),
    details: "token expired",
    challenge: 'Bearer error="invalid_token"',
  },
  {
    name: "bad signature",
    authorization: async () => bearer(flipSignature(await valid())),
    details: "invalid token",
    challenge: 'Bearer error="invalid_token"',
  },
];

async function assertRefused(
  server: TestServer,
  client: Client,
  kind: CallKind,
  authorization: string | undefined,
  expected: { code: status; details: string; challenge: string },
) {
  const before = server.calls.length;
  const outcome = await grpcCall(client, kind, authorization);
  assert.equal(outcome.ok, false, `${kind}: the call was let through`);
  if (outcome.ok) return;
  const { code, details, metadata } = outcome.error;
  assert.deepEqual(
    { code, details, challenge: metadata.get("www-authenticate") },
    { code: expected.code, details: expected.details, challenge: [expected.challenge] },
    `${kind}: status and trailers`,
  );
  assert.equal(server.calls.length, before, `${kind}: the handler ran`);
}

describe("grpc-js, request gate and interceptor", () => {
  const server = useServer(() => gateAndInterceptor(options));
  const client = useGrpcClient(server);

  for (const kind of kinds) {
    test(`${kind}: a valid token reaches the handler`, async () => {
      const before = server().calls.length;
      const outcome = await grpcCall(client(), kind, bearer(await valid()));
      assert.deepEqual(outcome, { ok: true, subject });
      const seen = server().calls.slice(before);
      assert.deepEqual(
        seen.map((c) => [c.method, c.claims?.sub]),
        [[methodOf[kind], subject]],
      );
    });

    test(`${kind}: refusals carry PERMISSION_DENIED, details and the challenge trailer`, async () => {
      for (const refusal of refusals) {
        await assertRefused(server(), client(), kind, await refusal.authorization(), {
          code: status.PERMISSION_DENIED,
          details: refusal.details,
          challenge: refusal.challenge,
        });
      }
    });
  }

  test("server-streaming: a token without notes:read gets insufficient_scope", async () => {
    const token = await mint(key, { claims: { sub: subject, scope: "notes:write chat" } });
    await assertRefused(server(), client(), "server-streaming", bearer(token), {
      code: status.PERMISSION_DENIED,
      details: "insufficient scope",
      challenge: 'Bearer error="insufficient_scope", scope="notes:read"',
    });
    // The same token is fine where its scopes suffice.
    assert.deepEqual(await grpcCall(client(), "client-streaming", bearer(token)), {
      ok: true,
      subject,
    });
  });
});

describe("grpc-js, request gate: a refused client stream", () => {
  const server = useServer(() =>
    Promise.resolve({ requestGate: createJwtAuth(options).requestGate }),
  );
  const client = useGrpcClient(server);

  test("is answered without its body being read", async () => {
    const upload = method("UploadNotes");
    server().bodyBytesRead = 0;
    const outcome = await new Promise<ServiceError | null>((resolve) => {
      const stream = client().makeClientStreamRequest(
        upload.path,
        upload.requestSerialize,
        upload.responseDeserialize,
        new Metadata(),
        { deadline: Date.now() + 10_000 },
        (err) => resolve(err),
      );
      // 2 MB: far more than the HTTP/2 flow-control window lets through unread.
      for (let i = 0; i < 2000; i++) {
        stream.write({ text: "x".repeat(1000) });
      }
      stream.end();
    });
    assert.equal(outcome?.code, status.PERMISSION_DENIED);
    assert.equal(outcome?.details, "missing bearer token");
    assert.equal(server().bodyBytesRead, 0);
    assert.equal(server().calls.length, 0);
  });
});

describe("grpc-js, interceptor only", () => {
  const server = useServer(() =>
    Promise.resolve({ interceptors: [createJwtAuth(options).interceptor] }),
  );
  const client = useGrpcClient(server);

  test("every call kind: valid passes, refusals are complete", async () => {
    for (const kind of kinds) {
      assert.deepEqual(await grpcCall(client(), kind, bearer(await valid())), {
        ok: true,
        subject,
      });
      for (const refusal of refusals) {
        await assertRefused(server(), client(), kind, await refusal.authorization(), {
          code: status.PERMISSION_DENIED,
          details: refusal.details,
          challenge: refusal.challenge,
        });
      }
    }
  });
});

describe("grpc-js, failureCode: Code.Unauthenticated", () => {
  const server = useServer(() =>
    gateAndInterceptor({ ...options, failureCode: Code.Unauthenticated }),
  );
  const client = useGrpcClient(server);

  test("every call kind: refusals carry UNAUTHENTICATED (16)", async () => {
    assert.equal(status.UNAUTHENTICATED, 16);
    for (const kind of kinds) {
      for (const refusal of refusals) {
        await assertRefused(server(), client(), kind, await refusal.authorization(), {
          code: status.UNAUTHENTICATED,
          details: refusal.details,
          challenge: refusal.challenge,
        });
      }
      assert.deepEqual(await grpcCall(client(), kind, bearer(await valid())), {
        ok: true,
        subject,
      });
    }
  });

  test("a scope refusal stays PERMISSION_DENIED", async () => {
    const token = await mint(key, { claims: { sub: subject, scope: "chat" } });
    await assertRefused(server(), client(), "server-streaming", bearer(token), {
      code: status.PERMISSION_DENIED,
      details: "insufficient scope",
      challenge: 'Bearer error="insufficient_scope", scope="notes:read"',
    });
  });
});
