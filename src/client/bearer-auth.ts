import type { Interceptor } from "@connectrpc/connect";
import { createTokenAuth, type TokenAuthOptions } from "./token-auth.js";
import type { TokenProvider } from "./token-source.js";

/**
 * BearerAuthOptions configure {@link bearerAuth}.
 *
 * @example
 * ```ts
 * const options: BearerAuthOptions = { refreshBefore: 60, retry: false };
 * const interceptor = bearerAuth(() => session.getAccessToken(), options);
 * ```
 */
export interface BearerAuthOptions extends TokenAuthOptions {}

/**
 * bearerAuth is a client interceptor that sets `Authorization: Bearer <token>`
 * on every call. Give it a token, or a provider that fetches one: a provided
 * token is reused until shortly before its `exp`, concurrent calls share one
 * refresh, and a unary call whose token the server refused (its failure code
 * with `error="invalid_token"` in `WWW-Authenticate`) is retried once with a
 * fresh token. In browsers the server must expose `WWW-Authenticate` through
 * CORS for that: a refusal whose challenge cannot be read is not retried. It works with every transport of `@connectrpc/connect-web`
 * and `@connectrpc/connect-node`, and never logs a token.
 *
 * @example
 * ```ts
 * const transport = createConnectTransport({
 *   baseUrl: "https://api.example.com",
 *   interceptors: [bearerAuth(() => session.getAccessToken())],
 * });
 * ```
 */
export function bearerAuth(
  token: string | TokenProvider,
  options: BearerAuthOptions = {},
): Interceptor {
  const auth = createTokenAuth("bearerAuth", token, options);
  return (next) => async (req) => {
    const first = await auth.source.get();
    req.header.set("authorization", `Bearer ${first}`);
    if (req.stream) {
      return next(req);
    }
    try {
      return await next(req);
    } catch (err) {
      const fresh = await auth.freshTokenAfter(err, first);
      if (fresh === undefined) {
        throw err;
      }
      req.header.set("authorization", `Bearer ${fresh}`);
      return next(req);
    }
  };
}
