import type { AnyResponse } from "./http-io.js";
import type { DualHandler } from "./listen.js";

/**
 * CorsOptions say which web origins may call the server from a browser.
 */
export interface CorsOptions {
  /**
   * Origins allowed to call, exactly as browsers send them
   * (`"https://app.example.com"`), or `"*"` for any origin.
   */
  readonly origins: "*" | readonly string[];
  /** How long browsers may cache a preflight answer, in seconds. Default 7200 (Chrome's cap). */
  readonly maxAge?: number;
}

/**
 * The request headers a browser may send: `Authorization` for the token,
 * `DPoP` for the proof of a DPoP-bound one, and what the Connect, gRPC-Web
 * and gRPC protocols use.
 */
export const corsAllowedHeaders = [
  "Authorization",
  "DPoP",
  "Content-Type",
  "Connect-Protocol-Version",
  "Connect-Timeout-Ms",
  "Grpc-Timeout",
  "X-Grpc-Web",
  "X-User-Agent",
] as const;

/**
 * The response headers a browser lets scripts read: the challenge of a refused
 * call, the nonce for the next DPoP proof, and the gRPC-Web status (sent as
 * headers when a call fails at once).
 */
export const corsExposedHeaders = [
  "WWW-Authenticate",
  "DPoP-Nonce",
  "Grpc-Status",
  "Grpc-Message",
  "Grpc-Status-Details-Bin",
] as const;

/**
 * withCors wraps a handler so browsers on the allowed origins can call it: it
 * answers preflight requests itself (204) and adds the CORS headers to every
 * other response, RPCs included. Other origins get no CORS headers, so their
 * browser refuses to hand the answer to the page.
 *
 * @example
 * ```ts
 * const handler = withCors(connectNodeAdapter({ routes }), { origins: ["https://app.example.com"] });
 * ```
 */
export function withCors(handler: DualHandler, options: CorsOptions): DualHandler {
  const allowAny = options.origins === "*";
  const allowed = new Set(allowAny ? [] : options.origins);
  const maxAge = options.maxAge ?? 7200;
  if (!Number.isSafeInteger(maxAge) || maxAge < 0) {
    throw new TypeError("withCors: maxAge must be a whole number of seconds");
  }
  const allowHeaders = corsAllowedHeaders.join(", ");
  const exposeHeaders = corsExposedHeaders.join(", ");
  return (req, res) => {
    const origin = req.headers.origin;
    const isAllowed = typeof origin === "string" && (allowAny || allowed.has(origin));
    // The answer depends on Origin (we echo it back), so caches must key on it.
    res.setHeader("vary", "Origin");
    const isPreflight =
      req.method === "OPTIONS" &&
      origin !== undefined &&
      req.headers["access-control-request-method"] !== undefined;
    if (isPreflight) {
      if (isAllowed) {
        res.setHeader("access-control-allow-origin", origin);
        res.setHeader("access-control-allow-methods", "GET, POST");
        res.setHeader("access-control-allow-headers", allowHeaders);
        res.setHeader("access-control-max-age", String(maxAge));
      }
      const out: AnyResponse = res;
      out.writeHead(204);
      out.end();
      return;
    }
    if (isAllowed) {
      // No Allow-Credentials: the demo authenticates with a bearer header,
      // never with cookies, so credentialed requests stay refused.
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("access-control-expose-headers", exposeHeaders);
    }
    handler(req, res);
  };
}

/**
 * parseCorsOrigins reads a comma-separated list of origins (the `CORS_ORIGINS`
 * variable); unset or empty means any origin. Each entry must be a bare
 * origin such as `https://app.example.com`, without path or trailing slash.
 */
export function parseCorsOrigins(value: string | undefined): "*" | string[] {
  const entries = (value ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (entries.length === 0 || entries.includes("*")) {
    return "*";
  }
  for (const entry of entries) {
    let origin: string | undefined;
    try {
      origin = new URL(entry).origin;
    } catch {
      origin = undefined;
    }
    if (origin !== entry) {
      throw new TypeError(
        `CORS_ORIGINS: ${JSON.stringify(entry)} is not an origin; write it like https://app.example.com`,
      );
    }
  }
  return entries;
}
