// A script, run by test/e2e/stream-expiry-memory.test.ts in a process of its own
// with --expose-gc:
//
//   node --expose-gc --import tsx test/helpers/long-stream.ts <messages> <on|off>
//
// It starts the test server with `endStreamsAtExpiry` on or off, sends one
// bidi stream `messages` messages after a warm-up, and prints as JSON how
// much the heap grew over them, measured while the stream is still open.
//
// A process of its own: inside a node:test test, the runner's async hooks
// track every promise, which makes a long stream several times slower and
// adds their own memory to the figure.
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { ChatRequestSchema } from "../../gen/demo/v1/demo_pb.js";
import { audience, generateTestKey, issuer, mint } from "./fixtures.js";
import { gateAndInterceptor, startServer } from "./server.js";

const warmUp = 2_000;

/** One ChatRequest in gRPC's framing: a flag byte, a 32-bit length, the message. */
const envelope = (() => {
  const message = toBinary(ChatRequestSchema, create(ChatRequestSchema, { text: "note" }));
  const frame = Buffer.alloc(5 + message.byteLength);
  frame.writeUInt32BE(message.byteLength, 1);
  frame.set(message, 5);
  return frame;
})();

function heapUsed(): number {
  assert.ok(globalThis.gc, "run with --expose-gc");
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed;
}

/**
 * heapGrowth opens one gRPC bidi stream to Chat, has `warmUp` messages
 * echoed, then `messages` more, and returns how much the heap grew over
 * those. The client speaks gRPC over node:http2 itself: the Connect client,
 * in this same process, keeps memory for each message of an open stream
 * (about 470 bytes in @connectrpc/connect 2.3.0: it races every read against
 * one promise that lives as long as the call).
 */
async function heapGrowth(url: string, token: string, messages: number): Promise<number> {
  const session = http2.connect(url);
  const stream = session.request({
    ":method": "POST",
    ":path": "/demo.v1.DemoService/Chat",
    "content-type": "application/grpc+proto",
    te: "trailers",
    authorization: `Bearer ${token}`,
  });
  let status: string | undefined;
  stream.on("trailers", (trailers) => {
    status = String(trailers["grpc-status"]);
  });
  const closed = new Promise((resolve) => stream.on("close", resolve));
  // Count the echoes, frame by frame.
  let echoes = 0;
  let unread = Buffer.alloc(0);
  let wanted = { count: 0, reached: () => {} };
  stream.on("data", (chunk: Buffer) => {
    unread = Buffer.concat([unread, chunk]);
    while (unread.byteLength >= 5 && unread.byteLength >= 5 + unread.readUInt32BE(1)) {
      unread = unread.subarray(5 + unread.readUInt32BE(1));
      echoes++;
    }
    if (echoes >= wanted.count) {
      wanted.reached();
    }
  });
  async function send(count: number) {
    const reached = new Promise<void>((resolve) => {
      wanted = { count: echoes + count, reached: resolve };
    });
    for (let sent = 0; sent < count; sent += 1000) {
      const batch = Buffer.concat(Array(Math.min(1000, count - sent)).fill(envelope));
      if (!stream.write(batch)) {
        await new Promise((resolve) => stream.once("drain", resolve));
      }
    }
    await reached;
  }
  try {
    await send(warmUp);
    const before = heapUsed();
    await send(messages);
    const growth = heapUsed() - before;
    stream.end();
    await closed;
    assert.equal(status, "0", "the stream did not end well");
    assert.equal(echoes, warmUp + messages);
    return growth;
  } finally {
    session.close();
  }
}

const messages = Number(process.argv[2]);
const expiry = process.argv[3];
assert.ok(
  Number.isInteger(messages) && (expiry === "on" || expiry === "off"),
  "usage: <messages> <on|off>",
);
const key = await generateTestKey("ES256");
const server = await startServer(
  gateAndInterceptor({
    jwks: { keys: [key.publicJwk] },
    issuer,
    audience,
    endStreamsAtExpiry: expiry === "on",
  }),
);
try {
  const token = await mint(key, { claims: { exp: Math.floor(Date.now() / 1000) + 3600 } });
  const started = performance.now();
  const growth = await heapGrowth(server.url, token, messages);
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify({ growth, seconds })}\n`);
} finally {
  await server.close();
}
