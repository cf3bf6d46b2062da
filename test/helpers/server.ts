import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { after, before } from "node:test";
import {
  type Client,
  Code,
  ConnectError,
  type ConnectRouter,
  createClient,
  type HandlerContext,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import {
  createJwtAuth,
  getClaims,
  type JwtAuthOptions,
  type JwtClaims,
  joinAuthorizationHeaders,
} from "../../src/index.js";

/**
 * A way to reach the server: one of the three protocols over one HTTP version.
 * Browsers speak Connect and gRPC-Web over HTTP/1.1; gRPC needs HTTP/2.
 */
export interface TransportKind {
  readonly name: string;
  readonly protocol: "connect" | "grpc" | "grpc-web";
  readonly httpVersion: "1.1" | "2";
}

/** Every transport the auth must work on. */
export const transports: readonly TransportKind[] = [
  { name: "connect over HTTP/1.1", protocol: "connect", httpVersion: "1.1" },
  { name: "connect over HTTP/2", protocol: "connect", httpVersion: "2" },
  { name: "grpc over HTTP/2", protocol: "grpc", httpVersion: "2" },
  { name: "grpc-web over HTTP/1.1", protocol: "grpc-web", httpVersion: "1.1" },
  { name: "grpc-web over HTTP/2", protocol: "grpc-web", httpVersion: "2" },
];

/** The four kinds of call, each made with a demo method. */
export type CallKind = "unary" | "server-streaming" | "client-streaming" | "bidi";

/** Call kinds a transport can make: HTTP/1.1 carries no client or bidi streams. */
export function callKinds(transport: TransportKind): CallKind[] {
  return transport.httpVersion === "2"
    ? ["unary", "server-streaming", "client-streaming", "bidi"]
    : ["unary", "server-streaming"];
}

/** A call that reached a handler, with the claims the handler saw. */
export interface HandlerCall {
  readonly method: string;
  readonly claims: JwtClaims | undefined;
}

/** What the server under test is given: the auth, wired as a user would. */
export interface ServerAuth {
  interceptors?: Interceptor[];
  requestGate?: (ctx: HandlerContext) => void | Promise<void>;
  /** A complete handler to serve instead of the recording demo service (calls are then not recorded). */
  handler?: (req: never, res: never) => void;
  /** Wraps the server's request handler, as an HTTP instrumentation would (e.g. to start a span). */
  instrument?: (handler: DualHandler) => DualHandler;
}

/** gateAndInterceptor wires one createJwtAuth as the demo does: its interceptor and its request gate. */
export function gateAndInterceptor(options: JwtAuthOptions): ServerAuth {
  const auth = createJwtAuth(options);
  return { interceptors: [auth.interceptor], requestGate: auth.requestGate };
}

/** A running test server and the clients that reach it. */
export interface TestServer {
  readonly url: string;
  /** Every call that reached a handler, in order. */
  readonly calls: HandlerCall[];
  /** Request body bytes the RPC layer read (draining a refused HTTP/1.1 body not included). */
  bodyBytesRead: number;
  /** A client for the transport; with interceptors, a new one each time (no caching). */
  client(transport: TransportKind, interceptors?: Interceptor[]): Client<typeof DemoService>;
  close(): Promise<void>;
}

function record(calls: HandlerCall[], method: string, ctx: HandlerContext) {
  calls.push({ method, claims: getClaims(ctx) });
  return getClaims(ctx)?.sub ?? "";
}

function routes(calls: HandlerCall[]) {
  return (router: ConnectRouter) =>
    router.service(DemoService, {
      ping(req, ctx) {
        return { text: req.text.slice(0, 16), subject: record(calls, "Ping", ctx) };
      },
      whoAmI(_req, ctx) {
        return { subject: record(calls, "WhoAmI", ctx) };
      },
      async *listNotes(req, ctx) {
        const owner = record(calls, "ListNotes", ctx);
        // limit > 0 asks for a slow stream: that many notes, 100 ms apart, until the call ends.
        const ids =
          req.limit > 0 ? Array.from({ length: req.limit }, (_, i) => String(i + 1)) : ["1", "2"];
        for (const id of ids) {
          if (req.limit > 0) {
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
          if (ctx.signal.aborted) {
            return;
          }
          yield { note: { id, owner, text: `note ${id}` } };
        }
      },
      async uploadNotes(reqs, ctx) {
        const owner = record(calls, "UploadNotes", ctx);
        let count = 0;
        for await (const _ of reqs) {
          count++;
        }
        return { count, owner };
      },
      async *chat(reqs, ctx) {
        const subject = record(calls, "Chat", ctx);
        for await (const req of reqs) {
          yield { text: req.text, subject };
        }
      },
    });
}

/** A Node.js request handler for both HTTP/1.1 and HTTP/2. */
export type DualHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/**
 * listen serves `handler` on 127.0.0.1, port 0, for HTTP/1.1 and HTTP/2 with
 * prior knowledge (h2c) on one port, so that every transport reaches one URL.
 * A connection that opens with "PRI " (the HTTP/2 preface) goes to the HTTP/2
 * server, any other to the HTTP/1.1 server; the bytes read to decide are put
 * back, and the HTTP/2 session reads them from the paused socket's buffer.
 */
async function listen(handler: DualHandler): Promise<{ url: string; close(): Promise<void> }> {
  const h1 = http.createServer(handler);
  // Refused streaming calls end in a client's RST_STREAM: let a test make
  // thousands on one connection without Node.js closing it as a "rapid reset".
  const h2 = http2.createServer({ streamResetBurst: 10_000, streamResetRate: 2_000 }, handler);
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let head = Buffer.alloc(0);
    const peek = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (head.length < 4) {
        return;
      }
      socket.off("data", peek);
      socket.pause();
      socket.unshift(head);
      if (head.subarray(0, 4).toString("latin1") === "PRI ") {
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", peek);
  });
  await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
  const { port } = tcp.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        tcp.close(() => resolve());
        for (const socket of sockets) {
          socket.destroy();
        }
      }),
  };
}

/**
 * startServer runs the demo service behind `auth` on 127.0.0.1, port 0,
 * serving HTTP/1.1 and h2c on one port.
 */
export async function startServer(auth: ServerAuth): Promise<TestServer> {
  const calls: HandlerCall[] = [];
  const adapter: (req: never, res: never) => void =
    auth.handler ??
    connectNodeAdapter({
      routes: routes(calls),
      interceptors: auth.interceptors ?? [],
      ...(auth.requestGate ? { requestGate: auth.requestGate } : {}),
    });
  const state = { bodyBytesRead: 0 };
  // As a server should be wired: duplicated authorization headers are refused.
  const guarded = joinAuthorizationHeaders(adapter);
  // Count what the RPC layer reads of the body: connect-node reads it through
  // the first iterator it takes of the request. A later iterator only drains
  // what is left of a refused HTTP/1.1 body, so it is not counted.
  const handler: DualHandler = (req, res) => {
    const iterator = req.iterator.bind(req);
    let first = true;
    req.iterator = (options) => {
      const inner = iterator(options);
      if (!first) {
        return inner;
      }
      first = false;
      return (async function* (): AsyncGenerator<unknown, undefined> {
        for await (const chunk of { [Symbol.asyncIterator]: () => inner }) {
          state.bodyBytesRead += (chunk as Buffer).byteLength;
          yield chunk;
        }
        return undefined;
      })();
    };
    guarded(req as never, res as never);
  };
  const server = await listen(auth.instrument?.(handler) ?? handler);
  const clients = new Map<string, Client<typeof DemoService>>();
  return {
    url: server.url,
    calls,
    get bodyBytesRead() {
      return state.bodyBytesRead;
    },
    set bodyBytesRead(n) {
      state.bodyBytesRead = n;
    },
    client(kind, interceptors) {
      if (interceptors !== undefined) {
        return createClient(DemoService, createTransport(kind, server.url, interceptors));
      }
      let client = clients.get(kind.name);
      if (client === undefined) {
        client = createClient(DemoService, createTransport(kind, server.url));
        clients.set(kind.name, client);
      }
      return client;
    },
    close: () => server.close(),
  };
}

function createTransport(
  kind: TransportKind,
  baseUrl: string,
  interceptors: Interceptor[] = [],
): Transport {
  const options = { baseUrl, httpVersion: kind.httpVersion, interceptors } as const;
  switch (kind.protocol) {
    case "connect":
      return createConnectTransport(options);
    case "grpc":
      return createGrpcTransport(options);
    case "grpc-web":
      return createGrpcWebTransport(options);
  }
}

/**
 * useServer starts a server before the tests of the enclosing `describe` and
 * closes it after them. Read the server from the returned function.
 */
export function useServer(
  auth: ServerAuth | (() => ServerAuth | Promise<ServerAuth>),
): () => TestServer {
  let server: TestServer | undefined;
  before(async () => {
    server = await startServer(typeof auth === "function" ? await auth() : auth);
  });
  after(async () => {
    await server?.close();
  });
  return () => {
    if (server === undefined) {
      throw new Error("useServer: the server is not running; read it inside a test");
    }
    return server;
  };
}

/** The outcome of one call: the subject a handler answered with, or the error. */
export type Outcome = { ok: true; subject: string } | { ok: false; error: ConnectError };

/**
 * call makes one call of `kind` with the given `authorization` header value
 * (none when undefined), or with the given headers, consumes the whole
 * response, and never throws.
 */
export async function call(
  client: Client<typeof DemoService>,
  kind: CallKind,
  authorization?: string | Record<string, string>,
): Promise<Outcome> {
  const headers: Record<string, string> =
    typeof authorization === "object"
      ? authorization
      : authorization === undefined
        ? {}
        : { authorization };
  const options = { headers, timeoutMs: 10_000 };
  async function* two<T>(message: T) {
    yield message;
    yield message;
  }
  try {
    switch (kind) {
      case "unary":
        return { ok: true, subject: (await client.whoAmI({}, options)).subject };
      case "server-streaming": {
        const owners = [];
        for await (const res of client.listNotes({}, options)) {
          owners.push(res.note?.owner ?? "");
        }
        return { ok: true, subject: [...new Set(owners)].join(",") };
      }
      case "client-streaming":
        return { ok: true, subject: (await client.uploadNotes(two({ text: "x" }), options)).owner };
      case "bidi": {
        const subjects = [];
        for await (const res of client.chat(two({ text: "x" }), options)) {
          subjects.push(res.subject);
        }
        return { ok: true, subject: [...new Set(subjects)].join(",") };
      }
    }
  } catch (err) {
    return { ok: false, error: ConnectError.from(err, Code.Unknown) };
  }
}

/** The method each call kind uses, as recorded in {@link TestServer.calls}. */
export const methodOf: Record<CallKind, string> = {
  unary: "WhoAmI",
  "server-streaming": "ListNotes",
  "client-streaming": "UploadNotes",
  bidi: "Chat",
};
