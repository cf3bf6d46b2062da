// One replica of a server sharing its revocation list and its record of used
// DPoP proofs through Redis: the demo service behind createJwtAuth with
// `revocations: redisRevocations()` and `dpop: { replayStore:
// redisReplayStore() }` (one client of the configured kind for both), run as
// a process of its own by test/helpers/replicas.ts. Its one argument is a
// JSON ReplicaConfig. When ready it prints `LISTENING <port>`; it exits when
// its standard input closes (so that it never outlives the test).
//
// Beside the RPCs it answers test-only admin endpoints on the same port:
// POST /test-admin/revoke with `{"jti", "exp"}` or `{"sub"}` revokes through
// this replica's list and answers `{"revokedAt"}`, the wall-clock time (ms,
// fractional) at which revokeToken or revokeSubject resolved; GET
// /test-admin/denials answers how many calls it refused, by reason.
import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { DeniedEvent } from "../../src/index.js";
import { redisReplayStore, redisRevocations } from "../../src/redis/index.js";
import { publicOrigin } from "./dpop.js";
import { audience, issuer } from "./fixtures.js";
import { connectClient } from "./redis-server.js";
import type { ReplicaConfig } from "./replicas.js";
import { wallClockMs } from "./replicas.js";
import { gateAndInterceptor, startServer } from "./server.js";

const config = JSON.parse(process.argv[2] ?? "{}") as ReplicaConfig;
const redis = await connectClient(config.kind, config.redisPort);
const revocations = redisRevocations({
  client: redis.client,
  channel: config.channel,
  prefix: config.prefix,
  ...(config.maxStaleness === undefined ? {} : { maxStaleness: config.maxStaleness }),
});
await revocations.ready();
const replayStore = redisReplayStore({
  client: redis.client,
  prefix: `${config.prefix}dpop:`,
  ...(config.dpopTimeout === undefined ? {} : { timeout: config.dpopTimeout }),
});
/** Calls refused, by reason. */
const denials: Record<string, number> = {};

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;

async function readJson(req: Request): Promise<Record<string, unknown>> {
  let body = "";
  for await (const chunk of req) {
    body += String(chunk);
  }
  return JSON.parse(body) as Record<string, unknown>;
}

function respond(res: Response, status: number, body: string) {
  res.statusCode = status;
  (res as http.ServerResponse).end(body);
}

async function admin(req: Request, res: Response) {
  try {
    const body = await readJson(req);
    if (typeof body.jti === "string") {
      await revocations.revokeToken({ jti: body.jti, exp: Number(body.exp) });
    } else {
      await revocations.revokeSubject(String(body.sub));
    }
    const revokedAt = wallClockMs();
    respond(res, 200, JSON.stringify({ revokedAt }));
  } catch (err) {
    respond(res, 500, String(err));
  }
}

const server = await startServer({
  ...gateAndInterceptor({
    jwks: { keys: [config.publicJwk] },
    issuer,
    audience,
    revocations,
    dpop: {
      origins: [publicOrigin],
      replayStore,
      ...(config.proofMaxAge === undefined ? {} : { proofMaxAge: config.proofMaxAge }),
    },
    onDenied: (event: DeniedEvent) => {
      denials[event.reason] = (denials[event.reason] ?? 0) + 1;
    },
  }),
  instrument: (handler) => (req, res) => {
    if (req.method === "POST" && req.url === "/test-admin/revoke") {
      void admin(req, res);
    } else if (req.method === "GET" && req.url === "/test-admin/denials") {
      respond(res, 200, JSON.stringify(denials));
    } else {
      handler(req, res);
    }
  },
});

process.stdin.resume();
process.stdin.on("close", () => {
  void (async () => {
    await Promise.race([
      Promise.all([server.close(), revocations.close()]),
      new Promise((resolve) => setTimeout(resolve, 2000)),
    ]);
    await redis.close();
    process.exit(0);
  })();
});

console.log(`LISTENING ${new URL(server.url).port}`);
