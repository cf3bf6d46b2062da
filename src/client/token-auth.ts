import { Code, ConnectError } from "@connectrpc/connect";
import { isCode } from "../connect/code.js";
import { createTokenSource, type TokenProvider, type TokenSource } from "./token-source.js";

/**
 * TokenAuthOptions are the options every interceptor of the client that
 * attaches tokens takes: `bearerAuth` and `dpopAuth`.
 *
 * @example
 * ```ts
 * const options: TokenAuthOptions = { refreshBefore: 60, failureCode: Code.Unauthenticated };
 * const interceptor = bearerAuth(() => session.getAccessToken(), options);
 * ```
 */
export interface TokenAuthOptions {
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

/** TokenAuth is where an interceptor gets its tokens, and a fresh one after a refusal. */
export interface TokenAuth {
  /** The tokens to send. */
  readonly source: TokenSource;
  /** The code of the server's refusals. */
  readonly failureCode: Code;
  /**
   * A fresh token to retry a unary call with, after `err` refused the call
   * made with `used`; undefined when the call must not be retried.
   */
  freshTokenAfter(err: unknown, used: string): Promise<string | undefined>;
}

/**
 * createTokenAuth validates the options of the interceptor named `caller`
 * (for its error messages) and holds its token source.
 */
export function createTokenAuth(
  caller: string,
  token: string | TokenProvider,
  options: TokenAuthOptions,
): TokenAuth {
  const refreshBefore = options.refreshBefore ?? 30;
  if (!Number.isFinite(refreshBefore) || refreshBefore < 0) {
    throw new TypeError(`${caller}: refreshBefore must be a number of seconds >= 0`);
  }
  const failureCode = options.failureCode ?? Code.PermissionDenied;
  if (!isCode(failureCode)) {
    throw new TypeError(`${caller}: failureCode must be a Code, e.g. Code.Unauthenticated`);
  }
  const source = createTokenSource(token, refreshBefore, caller);
  const retry = (options.retry ?? true) && source.refreshable;
  return {
    source,
    failureCode,
    async freshTokenAfter(err, used) {
      if (!retry || challengeOf(err, failureCode)?.includes('error="invalid_token"') !== true) {
        return undefined;
      }
      source.invalidate(used);
      const fresh = await source.get();
      return fresh === used ? undefined : fresh;
    },
  };
}

/**
 * The `WWW-Authenticate` challenge of a refusal with the server's failure
 * code, or null. Only such a refusal may be retried: any other (a handler's
 * PermissionDenied, a proxy's 403, a challenge CORS hides from a browser)
 * could have run the call, and replaying it would run it twice.
 */
export function challengeOf(err: unknown, failureCode: Code): string | null {
  if (!(err instanceof ConnectError) || err.code !== failureCode) {
    return null;
  }
  return err.metadata.get("www-authenticate");
}
