import { Code, ConnectError } from "@connectrpc/connect";
import type { AuthError, BearerChallenge } from "../core/errors.js";

/** How a refusal's challenge reads on a server that accepts DPoP. */
export interface DpopChallenge {
  /**
   * The scheme the refusal answers in: `DPoP` for a call that came with DPoP,
   * for a refusal of its proof, and when DPoP is required; `Bearer` otherwise.
   */
  readonly scheme: "Bearer" | "DPoP";
  /** The algorithms a proof may use, space-delimited. */
  readonly algs: string;
  /** A nonce to send in `DPoP-Nonce` (for `use_dpop_nonce`). */
  readonly nonce?: string | undefined;
}

/**
 * challengeHeader renders the `WWW-Authenticate` value for a challenge: RFC
 * 6750's `Bearer`, or RFC 9449's `DPoP` with the `algs` a proof may use. A
 * server that accepts both offers DPoP beside Bearer when no credentials came.
 */
export function challengeHeader(
  challenge: BearerChallenge,
  scope?: string,
  dpop?: DpopChallenge,
): string {
  // Scope tokens hold no quote or backslash (checked when rules compile).
  const params = [
    ...(challenge === "none" ? [] : [`error="${challenge}"`]),
    ...(scope === undefined ? [] : [`scope="${scope}"`]),
  ];
  if (dpop?.scheme === "DPoP") {
    return `DPoP ${[...params, `algs="${dpop.algs}"`].join(", ")}`;
  }
  const bearer = params.length === 0 ? "Bearer" : `Bearer ${params.join(", ")}`;
  return dpop !== undefined && challenge === "none"
    ? `${bearer}, DPoP algs="${dpop.algs}"`
    : bearer;
}

/**
 * toConnectError turns a refusal into the error the client sees: the fixed
 * message of the AuthError, `failureCode` (or `Unavailable` when the keys or the
 * revocation check could not be had), and the `WWW-Authenticate` challenge
 * (and, when the proof must carry a nonce, `DPoP-Nonce`) in the metadata. The
 * AuthError's cause is not attached: nothing from the token reaches the wire
 * or a log of the ConnectError.
 */
export function toConnectError(
  err: AuthError,
  failureCode: Code,
  dpop?: DpopChallenge,
): ConnectError {
  if (err.unavailable) {
    return withoutStackTrace(() => new ConnectError(err.message, Code.Unavailable));
  }
  // A valid token that the method's rule refuses is a matter of permission,
  // whatever code failed authentication gets.
  const code = err.forbidden ? Code.PermissionDenied : failureCode;
  const metadata: Record<string, string> = {
    "www-authenticate": challengeHeader(err.challenge, err.scope, dpop),
  };
  if (dpop?.nonce !== undefined) {
    metadata["dpop-nonce"] = dpop.nonce;
  }
  return withoutStackTrace(() => new ConnectError(err.message, code, metadata));
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
