/**
 * TokenProvider fetches a fresh access token, e.g. from an OAuth client or a
 * login session. It is called only when no usable token is at hand, and never
 * by two calls at once.
 */
export type TokenProvider = () => string | Promise<string>;

/** A token at hand, and when it stops being usable (ms since the epoch). */
interface Held {
  readonly token: string;
  readonly usableUntil: number;
}

/** TokenSource hands out tokens, reusing one until shortly before it expires. */
export interface TokenSource {
  /** A usable token: the one at hand, or a fresh one from the provider. */
  get(): Promise<string>;
  /** Forgets `token` if it is the one at hand, so that the next get() fetches anew. */
  invalidate(token: string): void;
  /** Whether tokens come from a provider (and so can be refreshed). */
  readonly refreshable: boolean;
}

/**
 * createTokenSource wraps a static token or a provider. A provider's token is
 * reused until `refreshBeforeSec` before the `exp` in its payload (read, not
 * verified: the client only schedules, the server judges); concurrent callers
 * share one in-flight fetch. `caller` names the interceptor in error messages.
 */
export function createTokenSource(
  token: string | TokenProvider,
  refreshBeforeSec: number,
  caller: string,
): TokenSource {
  if (typeof token === "string") {
    const value = checkToken(token, caller);
    return { get: () => Promise.resolve(value), invalidate() {}, refreshable: false };
  }
  if (typeof token !== "function") {
    throw new TypeError(`${caller}: pass a token string or a function that returns one`);
  }
  let held: Held | undefined;
  let inflight: Promise<string> | undefined;
  return {
    refreshable: true,
    get() {
      if (held !== undefined && Date.now() < held.usableUntil) {
        return Promise.resolve(held.token);
      }
      inflight ??= (async () => {
        try {
          const fresh = checkToken(await token(), caller);
          const exp = expiryOf(fresh);
          held = {
            token: fresh,
            usableUntil:
              exp === undefined ? Number.POSITIVE_INFINITY : (exp - refreshBeforeSec) * 1000,
          };
          return fresh;
        } finally {
          inflight = undefined;
        }
      })();
      return inflight;
    },
    invalidate(stale) {
      if (held?.token === stale) {
        held = undefined;
      }
    },
  };
}

function checkToken(token: unknown, caller: string): string {
  // The token itself never goes into a message.
  if (typeof token !== "string" || token === "" || /[\s,]/.test(token)) {
    throw new TypeError(`${caller}: the token is not a non-empty string without spaces`);
  }
  return token;
}

/** Reads `exp` from a JWT's payload without verifying it; undefined if there is none. */
function expiryOf(token: string): number | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined) {
    return undefined;
  }
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const json = new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
    const { exp } = JSON.parse(json) as { exp?: unknown };
    return typeof exp === "number" && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}
