import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { Duplex } from "node:stream";

/** A Node.js request handler that works for both HTTP/1.1 and HTTP/2. */
export type DualHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/** A running server: its address and how to stop it. */
export interface ListeningServer {
  /** The origin, e.g. `http://127.0.0.1:8080` or `https://127.0.0.1:8443`. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting connections and closes every open one. */
  close(): Promise<void>;
}

/** A running cleartext server (see {@link listenCleartext}). */
export type CleartextServer = ListeningServer;

/** urlOf is the origin of a server listening on `host` and `port`. */
export function urlOf(scheme: "http" | "https", host: string, port: number): string {
  return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * streamResetLimit is given to every HTTP/2 server of the demo (cleartext and
 * TLS). Node.js counts the RST_STREAM frames a client sends on a connection and
 * closes the connection with GOAWAY (INTERNAL_ERROR) past 1,000 of them at
 * more than 33 a second: nghttp2's guard against "rapid reset" floods
 * (CVE-2023-44487). A Connect or gRPC-Web client resets every streaming call
 * that ends in an error: it reads the error from the last message and cancels
 * the stream before the empty frame that ends it arrives. So 1,000 refused
 * streaming calls closed a connection, and with it every call of every user a
 * proxy had put on it. Such a reset follows an answer, so it comes no faster
 * than the server answers: about 1,000 refused streaming calls a second on one
 * connection, measured on 127.0.0.1. The rate allows twice that and the burst
 * 10,000 resets at once; a flood, which resets streams faster than they can be
 * answered, still loses its connection. Node.js 20 ignores both options.
 */
export const streamResetLimit = {
  streamResetBurst: 10_000,
  streamResetRate: 2_000,
} as const satisfies http2.ServerOptions;

// Every HTTP/2 connection without TLS ("prior knowledge") opens with this preface.
const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * replay wraps a socket whose first bytes were already read. The HTTP/2 session
 * reads a native socket below JavaScript, where `unshift` cannot reach, so it
 * is given a stream that yields the head first and then the socket's data.
 */
function replay(socket: net.Socket, head: Buffer): Duplex {
  const stream = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk, encoding, callback) {
      socket.write(chunk, encoding, callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(err, callback) {
      socket.destroy(err ?? undefined);
      callback(err);
    },
  });
  stream.push(head);
  socket.on("data", (chunk) => {
    if (!stream.push(chunk)) {
      socket.pause();
    }
  });
  socket.once("end", () => stream.push(null));
  socket.once("close", () => stream.destroy());
  return stream;
}

/**
 * listenCleartext serves one handler on one cleartext port for HTTP/1.1
 * (browsers, curl) and HTTP/2 with prior knowledge (h2c: gRPC clients). It
 * peeks at the first bytes of each connection: the HTTP/2 preface sends it to
 * the HTTP/2 server, anything else to the HTTP/1.1 server.
 */
export async function listenCleartext(
  handler: DualHandler,
  options: { host?: string; port?: number } = {},
): Promise<CleartextServer> {
  const h1 = http.createServer(handler);
  const h2 = http2.createServer({ ...streamResetLimit }, handler);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  // noDelay: small HTTP/2 frames must not wait for delayed ACKs (40 ms each).
  const tcp = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, preface.length);
      const isH2 = head.subarray(0, n).equals(preface.subarray(0, n));
      if (isH2 && head.length < preface.length) {
        return; // not sure yet: wait for the rest of the preface
      }
      socket.off("data", onData);
      if (isH2) {
        h2.emit("connection", replay(socket, head));
      } else {
        // The HTTP/1.1 parser reads what was put back before the socket's own data.
        socket.pause();
        socket.unshift(head);
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
  });
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen(options.port ?? 0, host, () => {
      tcp.off("error", reject);
      resolve();
    });
  });
  const { port } = tcp.address() as net.AddressInfo;
  return {
    url: urlOf("http", host, port),
    port,
    close() {
      return new Promise((resolve) => {
        tcp.close(() => resolve());
        for (const session of sessions) {
          session.close();
        }
        h1.closeAllConnections();
        for (const socket of sockets) {
          socket.destroy();
        }
      });
    },
  };
}
