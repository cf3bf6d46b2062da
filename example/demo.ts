import type { EventEmitter } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  createJwtAuth,
  type DeniedEvent,
  type JwtAuth,
  type JwtAuthOptions,
  joinAuthorizationHeaders,
} from "../src/index.js";
import { openTelemetry } from "../src/otel/index.js";
import { demoAudience, type ExternalIssuer } from "./config.js";
import { withCors } from "./cors.js";
import { publicMethods, routes } from "./demo-service.js";
import {
  createDevIssuer,
  type DevIssuer,
  type TokenBinding,
  type TokenRequest,
} from "./dev-issuer.js";
import { sendJson } from "./http-io.js";
import { type Endpoint, issuerEndpoints, issuerPaths } from "./issuer-endpoints.js";
import { type DualHandler, listenCleartext } from "./listen.js";
import { listenTls } from "./listen-tls.js";
import { demoMetrics } from "./metrics-endpoint.js";
import { listeningOrigins } from "./public-origins.js";
import { type DemoRevocations, demoRevocations } from "./revocations.js";
import { revokeEndpoint } from "./revoke-endpoint.js";
import { createTokenProofs } from "./token-proof.js";
import { webPage } from "./web-page.js";
import type { TlsCredentials } from "./x509.js";

/** The `aud` of the embedded issuer's tokens (defined with the configuration). */
export { demoAudience };

/** DemoOptions configure {@link startDemo}. */
export interface DemoOptions {
  /** The interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** The port; 0 (the default) picks a free one. */
  port?: number;
  /** Origins browsers may call from, or `"*"` (the default) for any. */
  corsOrigins?: "*" | readonly string[];
  /** Receives one line per refused call (method, protocol, reason; never the token). */
  log?: (line: string) => void;
  /** How long {@link Demo.close} waits for open calls to end, in ms. Default 2000. */
  drainTimeoutMs?: number;
  /**
   * Trust this issuer instead of the embedded one, whose endpoints
   * (`/demo/token`, `/.well-known/*`) are then not served.
   */
  external?: ExternalIssuer;
  /**
   * Serve HTTPS with this certificate and key (PEM): HTTP/2 and HTTP/1.1 on
   * one port, chosen by ALPN. Default: cleartext (HTTP/1.1 and h2c).
   */
  tls?: TlsCredentials;
  /**
   * Keep the revocation list in this Redis (a `redis://` URL), shared with
   * every demo given the same one. Default: in this process's memory.
   */
  redisUrl?: string;
  /**
   * The origins clients call the server as (`PUBLIC_ORIGIN`), which DPoP
   * proofs name in `htu`. Default: the address it listens on, as
   * `127.0.0.1` and `localhost`.
   */
  publicOrigins?: readonly string[];
}

/** Demo is a running demo server. */
export interface Demo {
  /**
   * The origin, e.g. `http://127.0.0.1:8080` (or `https://` with `tls`); also
   * the `iss` of the embedded issuer's tokens.
   */
  readonly url: string;
  readonly port: number;
  /** The embedded issuer (its public JWK and audience); `undefined` with an external issuer. */
  readonly issuer: DevIssuer | undefined;
  /** Where the revocation list lives: `"redis"` with `redisUrl`, else `"memory"`. */
  readonly revocations: DemoRevocations["kind"];
  /** The origins DPoP proofs may name in `htu` (see {@link DemoOptions.publicOrigins}). */
  readonly publicOrigins: readonly string[];
  /**
   * mintToken signs a token as `POST /demo/token` does, without the HTTP round
   * trip; with `binding`, a DPoP-bound one. With an external issuer it
   * rejects: tokens come from that issuer.
   */
  mintToken(request?: TokenRequest, binding?: TokenBinding): Promise<string>;
  /**
   * warmUp loads an external issuer's keys now rather than on the first call;
   * it rejects with an AuthError when they cannot be had. The server keeps
   * serving either way (and retries on use).
   */
  warmUp(): Promise<void>;
  /**
   * close shuts down gracefully: open calls end with `Unavailable` (a status,
   * not a reset connection), then the port closes. Calling it again is safe.
   */
  close(): Promise<void>;
}

/**
 * startDemo serves DemoService over Connect, gRPC and gRPC-Web on one port
 * (cleartext, or HTTPS with `tls`), with the embedded dev issuer (or an
 * external one), CORS, the demo web page at `/`, connect-jwt's metrics
 * at `/metrics` in the Prometheus text format, and a revocation list (in
 * memory, or in Redis with `redisUrl`) that `POST /demo/revoke` adds to.
 *
 * @example
 * ```ts
 * const demo = await startDemo({ port: 0 });
 * const token = await demo.mintToken({ sub: "alice" });
 * await demo.close();
 * ```
 */
export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  const { log, drainTimeoutMs = 2000 } = options;
  // The issuer is the server's own URL, known only once the port is bound
  // (port 0 picks one): so listen first, and install the real handler at once.
  let handler: DualHandler = (_req, res) => sendJson(res, 503, { error: "starting" });
  const address = { host: options.host ?? "127.0.0.1", port: options.port ?? 0 };
  const server = await (options.tls === undefined
    ? listenCleartext((req, res) => handler(req, res), address)
    : listenTls((req, res) => handler(req, res), { ...address, ...options.tls }));
  const { external } = options;
  const metrics = demoMetrics();
  const publicOrigins = [...(options.publicOrigins ?? listeningOrigins(server.url, server.port))];
  let issuer: DevIssuer | undefined;
  let auth: JwtAuth;
  let page: Endpoint;
  let revocations: DemoRevocations | undefined;
  try {
    revocations = await demoRevocations(options.redisUrl);
    page = await webPage({ url: server.url, external });
    if (external === undefined) {
      issuer = await createDevIssuer({ issuer: server.url, audience: demoAudience });
    }
    // The one place that knows where keys come from.
    auth = createJwtAuth({
      ...keySource(issuer, external),
      publicMethods,
      // DPoP-bound tokens are accepted beside plain Bearer ones.
      dpop: { origins: publicOrigins, replayStore: revocations.replayStore },
      telemetry: openTelemetry({ meterProvider: metrics.meterProvider }),
      revocations,
      ...(log === undefined ? {} : { onDenied: (e: DeniedEvent) => log(describe(e)) }),
    });
  } catch (err) {
    await server.close();
    await metrics.close();
    await revocations?.close();
    throw err;
  }
  const list = revocations;
  // Revoking is for the embedded issuer's tokens, beside the endpoint that mints them.
  const tokenUrls = publicOrigins.map((origin) => `${origin}${issuerPaths.token}`);
  const issuing =
    issuer === undefined ? undefined : issuerEndpoints(issuer, createTokenProofs({ tokenUrls }));
  const revoking = revokeEndpoint(list);
  const endpoints: Endpoint = (req, res, path) =>
    issuing !== undefined && (issuing(req, res, path) || revoking(req, res, path));
  const shutdown = new AbortController();
  const rpc = connectNodeAdapter({
    routes,
    interceptors: [auth.interceptor],
    requestGate: auth.requestGate,
    shutdownSignal: shutdown.signal,
    // Anything that is not an RPC: the issuer's endpoints, the web page, the metrics, 404.
    fallback(req, res) {
      const path = (req.url ?? "/").split("?")[0] ?? "/";
      if (
        !endpoints(req, res, path) &&
        !page(req, res, path) &&
        !metrics.endpoint(req, res, path)
      ) {
        sendJson(res, 404, { error: "not found" });
      }
    },
  });
  const open = new Set<EventEmitter>();
  let drained: (() => void) | undefined;
  // Several authorization headers count as malformed (Node.js would keep the first).
  const cors = withCors(joinAuthorizationHeaders(rpc), { origins: options.corsOrigins ?? "*" });
  handler = (req, res) => {
    // Count open responses, so that close() knows when the last one is done.
    open.add(res);
    res.once("close", () => {
      open.delete(res);
      if (open.size === 0) {
        drained?.();
      }
    });
    cors(req, res);
  };
  let closing: Promise<void> | undefined;
  return {
    url: server.url,
    port: server.port,
    issuer,
    revocations: list.kind,
    publicOrigins,
    mintToken: (request, binding) =>
      issuer === undefined
        ? Promise.reject(new Error("the demo trusts an external issuer; get tokens from it"))
        : issuer.mint(request, binding),
    warmUp: () => auth.warmUp(),
    close() {
      closing ??= (async () => {
        shutdown.abort(new ConnectError("the server is shutting down", Code.Unavailable));
        if (open.size > 0) {
          await new Promise<void>((resolve) => {
            drained = resolve;
            setTimeout(resolve, drainTimeoutMs).unref();
          });
        }
        await server.close();
        await metrics.close();
        await list.close();
      })();
      return closing;
    },
  };
}

/** The key source and claims to require: the embedded issuer's, or the external one's. */
function keySource(
  issuer: DevIssuer | undefined,
  external: ExternalIssuer | undefined,
): JwtAuthOptions {
  if (issuer !== undefined) {
    return {
      jwks: { keys: [issuer.publicJwk] },
      algorithms: ["ES256"],
      issuer: issuer.issuer,
      audience: issuer.audience,
    };
  }
  if (external === undefined) {
    throw new TypeError("startDemo: no issuer");
  }
  // Remote keys: every asymmetric algorithm, each key verifying only its own.
  return "issuerUrl" in external
    ? { issuerUrl: external.issuerUrl, audience: external.audience }
    : { jwksUrl: external.jwksUrl, issuer: external.issuer, audience: external.audience };
}

function describe(event: DeniedEvent): string {
  return `denied ${event.method} (${event.protocol}): ${event.reason}`;
}
