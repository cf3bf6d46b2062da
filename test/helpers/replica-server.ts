// One replica of a server sharing its revocation list through Redis: the
// demo service behind createJwtAuth with `revocations: redisRevocations()`,
// run as a process of its own by test/helpers/replicas.ts. Its one argument
// is a JSON ReplicaConfig. When ready it prints `LISTENING <port>`; it exits
// when its standard input closes (so that it never outlives the test).
//
// Beside the RPCs it answers a test-only admin endpoint on the same port:
// POST /test-admin/revoke with `{"jti", "exp"}` or `{"sub"}` revokes through
// this replica's list and answers `{"revokedAt"}`, the wall-clock time (ms,
// fractional) at which revokeToken or revokeSubject resolved.
import type * as http from "node:http";
import type * as http2 from "node:http2";
import { redisRevocations } from "../../src/redis/index.js";
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
  ...gateAndInterceptor({ jwks: { keys: [config.publicJwk] }, issuer, audience, revocations }),
  instrument: (handler) => (req, res) => {
    if (req.method === "POST" && req.url === "/test-admin/revoke") {
      void admin(req, res);
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
