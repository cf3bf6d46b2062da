import * as http2 from "node:http2";
import type * as net from "node:net";
import type * as tls from "node:tls";
import { type DualHandler, type ListeningServer, streamResetLimit, urlOf } from "./listen.js";
import type { TlsCredentials } from "./x509.js";

/** The protocols offered in the TLS handshake (ALPN), the server's preference first. */
export const alpnProtocols = ["h2", "http/1.1"] as const;

/**
 * listenTls serves one handler on one HTTPS port for HTTP/2 and HTTP/1.1: the
 * TLS handshake (ALPN) picks the version, h2 when the client offers it, so
 * gRPC clients, browsers and curl all reach the same handler. A client that
 * offers no ALPN at all gets HTTP/1.1.
 *
 * @example
 * ```ts
 * const server = await listenTls(handler, { port: 8443, ...selfSignedCertificate() });
 * ```
 */
export async function listenTls(
  handler: DualHandler,
  options: TlsCredentials & { host?: string; port?: number },
): Promise<ListeningServer> {
  const server = http2.createSecureServer(
    {
      ...streamResetLimit,
      cert: options.cert,
      key: options.key,
      allowHTTP1: true,
      ALPNProtocols: [...alpnProtocols],
      minVersion: "TLSv1.2",
    },
    handler,
  );
  const sockets = new Set<tls.TLSSocket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  // noDelay: small HTTP/2 frames must not wait for delayed ACKs (40 ms each).
  server.on("connection", (socket: net.Socket) => socket.setNoDelay(true));
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    url: urlOf("https", host, port),
    port,
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) {
          session.close();
        }
        // HTTP/1.1 connections (and HTTP/2 ones that do not go away by themselves).
        for (const socket of sockets) {
          socket.destroy();
        }
      });
    },
  };
}
