import { Code, ConnectError } from "@connectrpc/connect";
import type { AuthError, BearerChallenge } from "../core/errors.js";

/**
 * challengeHeader renders the RFC 6750 `WWW-Authenticate` value for a challenge.
 */
export function challengeHeader(challenge: BearerChallenge, scope?: string): string {
  if (challenge === "none") {
    return "Bearer";
  }
  // Scope tokens hold no quote or backslash (checked when rules compile).
  return scope === undefined
    ? `Bearer error="${challenge}"`
    : `Bearer error="${challenge}", scope="${scope}"`;
}

/**
 * toConnectError turns a refusal into the error the client sees: the fixed
 * message of the AuthError, `failureCode` (or `Unavailable` when the keys or the
 * revocation check could not be had), and the `WWW-Authenticate` challenge in the metadata. The
 * AuthError's cause is not attached: nothing from the token reaches the wire
 * or a log of the ConnectError.
 */
export function toConnectError(err: AuthError, failureCode: Code): ConnectError {
  if (err.unavailable) {
    return withoutStackTrace(() => new ConnectError(err.message, Code.Unavailable));
  }
  // A valid token that the method's rule refuses is a matter of permission,
  // whatever code failed authentication gets.
  const code = err.forbidden ? Code.PermissionDenied : failureCode;
  const challenge = challengeHeader(err.challenge, err.scope);
  return withoutStackTrace(
    () => new ConnectError(err.message, code, { "www-authenticate": challenge }),
  );
}

/**
 * Makes a refusal's ConnectError without capturing a stack trace. The client
 * gets its code, message and metadata, never its stack, which would show only
 * this library's frames; capturing it inside a server's deep async stack is
 * about a tenth of what a flood of refusals costs (bench, refusal rows). Where
 * the limit cannot be changed (frozen intrinsics), the error gets its stack.
 */
function withoutStackTrace<T>(make: () => T): T {
  const limit = Error.stackTraceLimit;
  try {
    Error.stackTraceLimit = 0;
  } catch {
    return make();
  }
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}
