// The same connect-jwt server for every fetch-API runtime (Bun, Deno,
// Cloudflare Workers): the demo service behind a Connect router with the
// interceptor and the request gate, served as a function from Request to
// Response. Only what every runtime has: no Node.js module, no Node.js global.
import { createConnectRouter } from "@connectrpc/connect";
import { createFetchHandler } from "@connectrpc/connect/protocol";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { createJwtAuth, type JwtAuthOptions } from "../../src/index.js";
import { demoService } from "../demo-service.js";

/** What the edge server needs to know of its issuer. */
export interface EdgeConfig {
  /** The issuer's public key: SPKI PEM, or a JWK as JSON. Kept in the isolate: nothing to fetch. */
  readonly publicKey?: string | undefined;
  /** Or the issuer's JWKS URL: fetched once per isolate, then cached. */
  readonly jwksUrl?: string | undefined;
  readonly algorithm: string;
  readonly issuer: string;
  readonly audience: string;
}

/**
 * edgeConfig reads the configuration from the environment: JWT_PUBLIC_KEY or
 * JWT_JWKS_URL, JWT_ALGORITHM (default ES256), JWT_ISSUER and JWT_AUDIENCE.
 */
export function edgeConfig(env: (name: string) => string | undefined): EdgeConfig {
  return {
    publicKey: env("JWT_PUBLIC_KEY"),
    jwksUrl: env("JWT_JWKS_URL"),
    algorithm: env("JWT_ALGORITHM") ?? "ES256",
    issuer: env("JWT_ISSUER") ?? "",
    audience: env("JWT_AUDIENCE") ?? "",
  };
}

/**
 * createEdgeHandler serves the demo service (Ping public, WhoAmI for any valid
 * token, ListNotes for the `notes:read` scope) over the Connect protocol and
 * gRPC-Web. Call it once, at module scope or on the first request, so that the
 * keys and the verified-token cache live as long as the isolate.
 */
export function createEdgeHandler(config: EdgeConfig): (req: Request) => Promise<Response> {
  const keys: Pick<JwtAuthOptions, "publicKey" | "jwksUrl"> =
    config.jwksUrl !== undefined
      ? { jwksUrl: config.jwksUrl }
      : {
          publicKey: config.publicKey?.startsWith("{")
            ? JSON.parse(config.publicKey)
            : (config.publicKey ?? ""),
        };
  const auth = createJwtAuth({
    ...keys,
    algorithms: [config.algorithm],
    issuer: config.issuer,
    audience: config.audience,
  });
  const router = createConnectRouter({
    interceptors: [auth.interceptor],
    requestGate: auth.requestGate, // refuses before the request body is read
  });
  router.service(DemoService, demoService);
  const routes = new Map(router.handlers.map((h) => [h.requestPath, createFetchHandler(h)]));
  return async (req) => {
    const handler = routes.get(new URL(req.url).pathname);
    return handler === undefined ? new Response(null, { status: 404 }) : handler(req);
  };
}
