// One server under test, in its own process (own heap, own CPU). Started by
// run.ts and paired.ts with a JSON config as its argument; it prints "LISTENING <port>"
// and answers {type: "stats"} messages on the IPC channel with its CPU time,
// memory, request count and the request body bytes the RPC layer read.

import * as http2 from "node:http2";
import type { Socket } from "node:net";
import { join } from "node:path";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { Code, ConnectError, createContextKey } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { createJwtAuth, getClaims, type JwtAuthOptions } from "connect-jwt";
import { openTelemetry } from "connect-jwt/otel";
import { redisRevocations } from "connect-jwt/redis";
import { type CryptoKey, importSPKI, type JWTPayload, jwtVerify } from "jose";
import { createClient } from "redis";
import { DemoService } from "../gen/demo/v1/demo_pb.js";
import { dpopOrigin } from "./dpop.js";
import { leastGate, refuseGate } from "./floors.js";
import { type Alg, audience, issuer, type KeyMaterial, readKey } from "./keys.js";
import { repoDir } from "./processes.js";

/** Who authenticates the calls. */
export type AuthKind =
  | "none" // no authentication: the limit
  | "jose" // a hand-written interceptor calling jose's jwtVerify per request
  | "connect-jwt" // createJwtAuth: interceptor + request gate, cache on
  | "connect-jwt-otel" // connect-jwt with openTelemetry() recording into a MeterProvider
  | "connect-jwt-dpop" // connect-jwt with dpop on: a proof checked on every call
  | "connect-jwt-revocations" // connect-jwt with redisRevocations() on the redis-server at `redisPort`
  | "connect-jwt-interceptor" // createJwtAuth: interceptor only (no gate)
  | "connect-jwt-gate" // createJwtAuth: request gate only (diagnostics)
  | "noop-interceptor" // an interceptor that only calls next (diagnostics)
  | "noop-gate" // a request gate that decides nothing (diagnostics)
  | "header-gate" // a request gate that reads `authorization` and records three values (diagnostics)
  | "map-gate" // header-gate, the claims found by the token in a Map (diagnostics)
  | "refuse-gate"; // a request gate that refuses every call, reading nothing (diagnostics)

export interface ServerConfig {
  readonly impl: "connect" | "grpc-js";
  readonly auth: AuthKind;
  readonly alg: Alg;
  /**
   * Count the request body bytes the RPC layer reads (the gate loads). It
   * wraps every request's body iterator, which costs about 10 µs a request,
   * so the throughput servers go without.
   */
  readonly countBodyBytes?: boolean;
  /** The port of the redis-server that `connect-jwt-revocations` keeps its list in. */
  readonly redisPort?: number;
}

export interface ServerStats {
  /** CPU time of the process so far, µs (user + system). */
  readonly cpuMicros: number;
  /** Requests (HTTP/2 streams) that reached the server. */
  readonly requests: number;
  /** Request body bytes the RPC layer read. */
  readonly bodyBytes: number;
  /** Bytes received on all sockets (headers, bodies, framing). */
  readonly socketBytes: number;
  readonly heapUsed: number;
  readonly rss: number;
}

const config = JSON.parse(process.argv[2] ?? "{}") as ServerConfig;
/** The subject answered without a token: as long as a warm token's (`bench-user-123`). */
const anonymous = "bench-user-000";
const material = readKey(config.alg);
const counters = { requests: 0, bodyBytes: 0 };
const sockets = new Set<Socket>();
let closedSocketBytes = 0;

/** The key as the docs of jose show it: bytes for HMAC, an imported CryptoKey otherwise. */
async function joseKey(m: KeyMaterial): Promise<Uint8Array | CryptoKey> {
  if (m.secret !== undefined) {
    return new TextEncoder().encode(m.secret);
  }
  return importSPKI(m.publicPem ?? "", m.alg);
}

function connectJwtOptions(m: KeyMaterial): JwtAuthOptions {
  const keySource =
    m.secret !== undefined
      ? { secret: new TextEncoder().encode(m.secret) }
      : { publicKey: m.publicPem ?? "" };
  return { ...keySource, algorithms: [m.alg], issuer, audience };
}

// The hand-written interceptor, as Connect's documentation shows an auth
// interceptor: read the header, jwtVerify, put the claims in the context.
const userKey = createContextKey<JWTPayload | undefined>(undefined);
function joseInterceptor(key: Uint8Array | CryptoKey): Interceptor {
  return (next) => async (req) => {
    const header = req.header.get("authorization");
    if (header === null || !header.startsWith("Bearer ")) {
      throw new ConnectError("missing token", Code.PermissionDenied);
    }
    try {
      const { payload } = await jwtVerify(header.slice(7), key, {
        issuer,
        audience,
        algorithms: [config.alg],
      });
      req.contextValues.set(userKey, payload);
    } catch {
      throw new ConnectError("invalid token", Code.PermissionDenied);
    }
    return next(req);
  };
}

async function connectHandler() {
  const routes = (router: ConnectRouter) =>
    router.service(DemoService, {
      whoAmI(_req, ctx) {
        const sub = getClaims(ctx)?.sub ?? ctx.values.get(userKey)?.sub;
        // Without authentication there is no subject: a stand-in of the same
        // size, so that every configuration sends the same response.
        return { subject: typeof sub === "string" ? sub : anonymous };
      },
    });
  switch (config.auth) {
    case "none":
      return connectNodeAdapter({ routes });
    case "jose":
      return connectNodeAdapter({
        routes,
        interceptors: [joseInterceptor(await joseKey(material))],
      });
    case "connect-jwt": {
      const auth = createJwtAuth(connectJwtOptions(material));
      return connectNodeAdapter({
        routes,
        interceptors: [auth.interceptor],
        requestGate: auth.requestGate,
      });
    }
    case "connect-jwt-otel": {
      // What a deployment that exports metrics records on every call: the
      // instruments aggregate into the provider's reader (a Prometheus
      // exporter that serves nothing here), whatever reads them later.
      const meterProvider = new MeterProvider({
        readers: [new PrometheusExporter({ preventServerStart: true })],
      });
      const auth = createJwtAuth({
        ...connectJwtOptions(material),
        telemetry: openTelemetry({ meterProvider }),
      });
      return connectNodeAdapter({
        routes,
        interceptors: [auth.interceptor],
        requestGate: auth.requestGate,
      });
    }
    case "connect-jwt-dpop": {
      const auth = createJwtAuth({
        ...connectJwtOptions(material),
        dpop: {
          origins: [dpopOrigin],
          // h2load sends one proof again and again: a store that remembers
          // nothing lets it through, so that the load measures every check of
          // the proof and its signature (bench:micro times the in-memory
          // store, with a new proof per call). A run lasts minutes.
          replayStore: { use: () => true },
          proofMaxAge: "1h",
        },
      });
      return connectNodeAdapter({
        routes,
        interceptors: [auth.interceptor],
        requestGate: auth.requestGate,
      });
    }
    case "connect-jwt-revocations": {
      // The list in memory, kept current from Redis: a lookup on every call.
      const client = createClient({ socket: { host: "127.0.0.1", port: config.redisPort ?? 0 } });
      client.on("error", () => {});
      await client.connect();
      const revocations = redisRevocations({ client });
      await revocations.ready();
      const auth = createJwtAuth({ ...connectJwtOptions(material), revocations });
      return connectNodeAdapter({
        routes,
        interceptors: [auth.interceptor],
        requestGate: auth.requestGate,
      });
    }
    case "connect-jwt-interceptor": {
      const auth = createJwtAuth(connectJwtOptions(material));
      return connectNodeAdapter({ routes, interceptors: [auth.interceptor] });
    }
    case "connect-jwt-gate": {
      const auth = createJwtAuth(connectJwtOptions(material));
      return connectNodeAdapter({ routes, requestGate: auth.requestGate });
    }
    case "noop-interceptor":
      return connectNodeAdapter({ routes, interceptors: [(next) => (req) => next(req)] });
    case "noop-gate":
      return connectNodeAdapter({ routes, requestGate: async () => {} });
    case "header-gate":
      return connectNodeAdapter({ routes, requestGate: leastGate(false) });
    case "map-gate":
      return connectNodeAdapter({ routes, requestGate: leastGate(true) });
    case "refuse-gate":
      return connectNodeAdapter({ routes, requestGate: refuseGate });
  }
}

async function startConnect(): Promise<number> {
  const adapter = await connectHandler();
  const server = http2.createServer((req, res) => {
    counters.requests++;
    if (config.countBodyBytes !== true) {
      adapter(req, res);
      return;
    }
    // Count what the RPC layer reads of the body: it reads it through the
    // first iterator it takes of the request.
    const iterator = req.iterator.bind(req);
    req.iterator = (options) => {
      req.iterator = iterator;
      const inner = iterator(options);
      return (async function* () {
        for await (const chunk of { [Symbol.asyncIterator]: () => inner }) {
          counters.bodyBytes += (chunk as Buffer).byteLength;
          yield chunk;
        }
      })() as ReturnType<typeof iterator>;
    };
    adapter(req, res);
  });
  server.on("connection", track);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as { port: number }).port;
}

function track(socket: Socket) {
  sockets.add(socket);
  socket.setNoDelay(true);
  socket.once("close", () => {
    sockets.delete(socket);
    closedSocketBytes += socket.bytesRead;
  });
}

// The peer: @grpc/grpc-js with a server interceptor doing what a typical
// Python gRPC auth interceptor does: read `authorization`, verify the token
// with jose, and end the call with PERMISSION_DENIED if that fails.
async function startGrpcJs(): Promise<number> {
  const definition = loadSync("demo/v1/demo.proto", { includeDirs: [join(repoDir, "proto")] });
  const service = definition["demo.v1.DemoService"] as grpc.ServiceDefinition;
  const interceptors: grpc.ServerInterceptor[] = [];
  if (config.auth === "jose") {
    const key = await joseKey(material);
    const options = { issuer, audience, algorithms: [config.alg] };
    const deny = (call: grpc.ServerInterceptingCallInterface) =>
      call.sendStatus({ code: grpc.status.PERMISSION_DENIED, details: "invalid token" });
    interceptors.push(
      (_method, call) =>
        new grpc.ServerInterceptingCall(call, {
          start(next) {
            next({
              onReceiveMetadata(metadata, mdNext) {
                const header = metadata.get("authorization")[0];
                if (typeof header !== "string" || !header.startsWith("Bearer ")) {
                  deny(call);
                  return;
                }
                jwtVerify(header.slice(7), key, options).then(
                  () => mdNext(metadata),
                  () => deny(call),
                );
              },
            });
          },
        }),
    );
  } else if (config.auth !== "none") {
    throw new Error(`grpc-js serves auth "none" or "jose", not ${config.auth}`);
  }
  const server = new grpc.Server({ interceptors });
  server.addService(service, {
    whoAmI(_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
      counters.requests++;
      // A Python-style interceptor hands the handler no claims: the stand-in subject.
      callback(null, { subject: anonymous });
    },
  });
  return new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) =>
      err === null ? resolve(port) : reject(err),
    ),
  );
}

const port = config.impl === "grpc-js" ? await startGrpcJs() : await startConnect();

process.on("message", (message: { type: string }) => {
  if (message.type === "stats") {
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    const stats: ServerStats = {
      cpuMicros: cpu.user + cpu.system,
      requests: counters.requests,
      bodyBytes: counters.bodyBytes,
      socketBytes: closedSocketBytes + [...sockets].reduce((n, s) => n + s.bytesRead, 0),
      heapUsed: mem.heapUsed,
      rss: mem.rss,
    };
    process.send?.({ type: "stats", stats });
  }
});
process.on("disconnect", () => process.exit(0));
// A clean exit on a signal, so that --cpu-prof can write its profile.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => process.exit(0));
}
console.log(`LISTENING ${port}`);
