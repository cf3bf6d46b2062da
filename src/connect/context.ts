import { Code, ConnectError, type ContextValues, createContextKey } from "@connectrpc/connect";
import type { JwtClaims } from "../core/claims.js";
import { challengeHeader } from "./connect-error.js";

/**
 * claimsKey is the Connect context key that holds the verified claims of the
 * call, or `undefined` when the call carried no token (on a public method).
 *
 * @example
 * ```ts
 * const claims = ctx.values.get(claimsKey);
 * ```
 */
export const claimsKey = createContextKey<JwtClaims | undefined>(undefined, {
  description: "connect-jwt: verified claims",
});

/** The failure code of the auth that handled the call, for requireClaims. */
export const failureCodeKey = createContextKey<Code>(Code.PermissionDenied, {
  description: "connect-jwt: failure code",
});

/** Anything that carries Connect context values: a HandlerContext, or `ctx.values` itself. */
export type ClaimsSource =
  | {
      /** The call's context values, as on a HandlerContext. */
      readonly values: ContextValues;
    }
  | ContextValues;

function valuesOf(source: ClaimsSource): ContextValues {
  return "values" in source ? source.values : source;
}

/**
 * getClaims returns the verified claims of the current call, or `undefined`
 * when it carried no token (possible only on a public method).
 *
 * @example
 * ```ts
 * async ping(req, ctx) {
 *   const claims = getClaims(ctx);
 *   return { text: claims ? `hello ${claims.sub}` : "hello stranger" };
 * }
 * ```
 */
export function getClaims(ctx: ClaimsSource): JwtClaims | undefined {
  return valuesOf(ctx).get(claimsKey);
}

/**
 * requireClaims returns the verified claims of the current call, and refuses
 * the call (with the auth's failure code and a `WWW-Authenticate: Bearer`
 * challenge) when there are none, for example on a public method called
 * without a token.
 *
 * @example
 * ```ts
 * async whoAmI(req, ctx) {
 *   return { subject: requireClaims(ctx).sub };
 * }
 * ```
 */
export function requireClaims(ctx: ClaimsSource): JwtClaims {
  const values = valuesOf(ctx);
  const claims = values.get(claimsKey);
  if (claims === undefined) {
    throw new ConnectError("missing bearer token", values.get(failureCodeKey), {
      "www-authenticate": challengeHeader("none"),
    });
  }
  return claims;
}
