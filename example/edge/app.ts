// The same connect-jwt server for every fetch-API runtime (Bun, Deno,
// Cloudflare Workers): a Connect router with the interceptor and the request
// gate, served as a function from Request to Response. Only what every
// runtime has: no Node.js module, no Node.js global.
import { createConnectRouter } from "@connectrpc/connect";
import { createFetchHandler } from "@connectrpc/connect/protocol";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { createJwtAuth, requireClaims } from "../../src/index.js";

/** What the edge server needs to know of its issuer. */
export interface EdgeConfig {
  /** The issuer's public key: SPKI PEM, or a JWK as JSON. */
  readonly publicKey: string;
  readonly algorithm: string;
  readonly issuer: string;
  readonly audience: string;
}

/** createEdgeHandler answers the demo service's WhoAmI for authenticated callers. */
export function createEdgeHandler(config: EdgeConfig): (req: Request) => Promise<Response> {
  const auth = createJwtAuth({
    publicKey: config.publicKey.startsWith("{") ? JSON.parse(config.publicKey) : config.publicKey,
    algorithms: [config.algorithm],
    issuer: config.issuer,
    audience: config.audience,
  });
  const router = createConnectRouter({
    interceptors: [auth.interceptor],
    requestGate: auth.requestGate,
  });
  router.service(DemoService, {
    whoAmI(_req, ctx) {
      const claims = requireClaims(ctx);
      return { subject: String(claims.sub), issuer: String(claims.iss) };
    },
  });
  const routes = new Map(router.handlers.map((h) => [h.requestPath, createFetchHandler(h)]));
  return async (req) => {
    const handler = routes.get(new URL(req.url).pathname);
    return handler === undefined ? new Response(null, { status: 404 }) : handler(req);
  };
}
