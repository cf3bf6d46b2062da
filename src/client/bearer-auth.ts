import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { isCode } from "../connect/code.js";
import { createTokenSource, type TokenProvider } from "./token-source.js";

/** BearerAuthOptions configure {@link bearerAuth}. */
export interface BearerAuthOptions {
  /**
   * Seconds before a provided token's `exp` at which it is no longer used and
   * a fresh one is fetched. Default 30.
   */
  refreshBefore?: number;
  /**
   * The code the server refuses failed authentication with: `failureCode` of
   * the server's `createJwtAuth`. Default `Code.PermissionDenied`.
   */
  failureCode?: Code;
  /**
   * Retry a unary call once with a freshly fetched token (providers only) when
   * the server refused its token with `error="invalid_token"`. Default true.
   * Streaming calls are never replayed, nor calls refused for anything else.
   */
  retry?: boolean;
}

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
  const refreshBefore = options.refreshBefore ?? 30;
  if (!Number.isFinite(refreshBefore) || refreshBefore < 0) {
    throw new TypeError("bearerAuth: refreshBefore must be a number of seconds >= 0");
  }
  const failureCode = options.failureCode ?? Code.PermissionDenied;
  if (!isCode(failureCode)) {
    throw new TypeError("bearerAuth: failureCode must be a Code, e.g. Code.Unauthenticated");
  }
  const source = createTokenSource(token, refreshBefore);
  const retry = (options.retry ?? true) && source.refreshable;
  return (next) => async (req) => {
    const first = await source.get();
    req.header.set("authorization", `Bearer ${first}`);
    if (req.stream || !retry) {
      return next(req);
    }
    try {
      return await next(req);
    } catch (err) {
      if (!isStaleToken(err, failureCode)) {
        throw err;
      }
      source.invalidate(first);
      const fresh = await source.get();
      if (fresh === first) {
        throw err;
      }
      req.header.set("authorization", `Bearer ${fresh}`);
      return next(req);
    }
  };
}

/**
 * Whether the server refused the token itself (`error="invalid_token"` in its
 * challenge), the one refusal a fresh token can change. Any other refusal (a
 * handler's PermissionDenied, a proxy's 403, a challenge CORS hides from a
 * browser) is not retried: replaying it would run the call twice.
 */
function isStaleToken(err: unknown, failureCode: Code): boolean {
  if (!(err instanceof ConnectError) || err.code !== failureCode) {
    return false;
  }
  const challenge = err.metadata.get("www-authenticate");
  return challenge !== null && /\berror="invalid_token"/.test(challenge);
}
