// Mixed-traffic soak: the demo server under concurrent load from all three
// protocols, with valid, expired, forged and missing tokens; every answer is
// checked. Usage: npm run soak -- --seconds 60 [--concurrency 32]
// Exits non-zero if any decision was wrong or any error was unexpected.
import { parseArgs } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { DemoService } from "../gen/demo/v1/demo_pb.js";
import { startDemo } from "./demo.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "60" },
    concurrency: { type: "string", default: "32" },
  },
});
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
if (!(seconds > 0) || !(concurrency > 0)) {
  console.error("usage: npm run soak -- --seconds 60 [--concurrency 32]");
  process.exit(2);
}

const gc = (globalThis as { gc?: () => void }).gc;
const heapMiB = () => {
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

const demo = await startDemo({ port: 0 });
const scope = "notes:read notes:write chat";
const valid = await Promise.all(
  Array.from({ length: 200 }, (_, i) => demo.mintToken({ sub: `soak-${i}`, scope, ttl: 3600 })),
);
// Expired tokens: signed by the demo's key, with a 1 s lifetime that has run
// out past the 5 s clock tolerance by the time the load starts.
const expired = await Promise.all(
  Array.from({ length: 20 }, (_, i) => demo.mintToken({ sub: `expired-${i}`, scope, ttl: 1 })),
);
const forged = valid.slice(0, 20).map((token) => {
  const [h, p, s = ""] = token.split(".");
  return `${h}.${p}.${s.slice(0, 10)}${s[10] === "A" ? "B" : "A"}${s.slice(11)}`;
});
console.log("waiting 7 s for the expired tokens to expire…");
await new Promise((resolve) => setTimeout(resolve, 7000));

const clients = [
  createClient(DemoService, createConnectTransport({ baseUrl: demo.url, httpVersion: "1.1" })),
  createClient(DemoService, createGrpcTransport({ baseUrl: demo.url })),
  createClient(DemoService, createGrpcWebTransport({ baseUrl: demo.url, httpVersion: "1.1" })),
];
const kinds = ["valid", "expired", "forged", "missing"] as const;
const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)] as T;
const byKind: Record<(typeof kinds)[number], number> = {
  valid: 0,
  expired: 0,
  forged: 0,
  missing: 0,
};
const stats = { requests: 0, wrong: 0, unexpected: 0 };
const heapBefore = heapMiB();
const deadline = Date.now() + seconds * 1000;

async function once() {
  const kind = pick(kinds);
  const token =
    kind === "valid"
      ? pick(valid)
      : kind === "expired"
        ? pick(expired)
        : kind === "forged"
          ? pick(forged)
          : undefined;
  const headers = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const client = pick(clients);
  stats.requests++;
  byKind[kind]++;
  try {
    let subject: string;
    if (Math.random() < 0.5) {
      subject = (await client.whoAmI({}, { headers, timeoutMs: 10_000 })).subject;
    } else {
      const owners = [];
      for await (const res of client.listNotes({ limit: 2 }, { headers, timeoutMs: 10_000 })) {
        owners.push(res.note?.owner);
      }
      subject = owners[0] ?? "";
    }
    if (kind !== "valid" || !token?.includes(".") || !subject.startsWith("soak-")) {
      stats.wrong++;
    }
  } catch (err) {
    const code = ConnectError.from(err).code;
    if (kind === "valid") {
      stats.wrong++;
    }
    if (code !== Code.PermissionDenied) {
      stats.unexpected++;
      console.error(`unexpected: ${kind} → ${Code[code]}`);
    }
  }
}

await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (Date.now() < deadline) {
      await once();
    }
  }),
);
const heapAfter = heapMiB();
await demo.close();

console.log(
  `soak: ${seconds} s, ${concurrency} concurrent callers over connect, grpc and grpc-web`,
);
console.log(`requests: ${stats.requests} (${kinds.map((k) => `${k} ${byKind[k]}`).join(", ")})`);
console.log(`requests/s: ${(stats.requests / seconds).toFixed(0)}`);
console.log(`wrong decisions: ${stats.wrong}`);
console.log(`unexpected errors: ${stats.unexpected}`);
console.log(
  `heap: ${heapBefore.toFixed(1)} MiB before, ${heapAfter.toFixed(1)} MiB after${gc ? "" : " (no --expose-gc)"}`,
);
process.exit(stats.wrong === 0 && stats.unexpected === 0 ? 0 : 1);
