import { Code, ConnectError } from "@connectrpc/connect";
import type { AuthError, BearerChallenge } from "../core/errors.js";

/**
 * challengeHeader renders the RFC 6750 `WWW-Authenticate` value for a challenge.
 */
export function challengeHeader(challenge: BearerChallenge): string {
  return challenge === "none" ? "Bearer" : `Bearer error="${challenge}"`;
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
    return new ConnectError(err.message, Code.Unavailable);
  }
  return new ConnectError(err.message, failureCode, {
    "www-authenticate": challengeHeader(err.challenge),
  });
}
