// The edge example on Cloudflare Workers: a module worker, without the
// nodejs_compat flag. Configured by the Worker's variables (JWT_PUBLIC_KEY or
// JWT_JWKS_URL, JWT_ALGORITHM, JWT_ISSUER, JWT_AUDIENCE); bundle it with
// wrangler, or esbuild with `platform: "neutral"`.
import { createEdgeHandler, edgeConfig } from "./app.js";

/** The Worker's variables (wrangler.toml `[vars]`, or secrets). */
type Env = Readonly<Record<string, string | undefined>>;

// Made on the first request and kept at module scope: the keys and the
// verified-token cache live as long as the isolate, not one request.
let handler: ((req: Request) => Promise<Response>) | undefined;

export default {
  fetch(req: Request, env: Env): Promise<Response> {
    handler ??= createEdgeHandler(edgeConfig((name) => env[name]));
    return handler(req);
  },
};
