import type { AuthErrorCode } from "./errors.js";
import { KeySetError } from "./fetch-json.js";

/**
 * AuthenticationEvent tells {@link Telemetry} how one call was decided. Every
 * member but `subject` takes a bounded set of values; `subject` is there for
 * an implementation that records it on purpose, and never for metrics.
 *
 * @example
 * ```ts
 * const refusals = new Map<string, number>();
 * const authenticated = (e: AuthenticationEvent) => {
 *   if (e.reason !== undefined) refusals.set(e.reason, (refusals.get(e.reason) ?? 0) + 1);
 * };
 * ```
 */
export interface AuthenticationEvent {
  /** `"admitted"`, `"refused"`, or `"unavailable"` when keys or revocations could not be had. */
  readonly outcome: "admitted" | "refused" | "unavailable";
  /** The reason of a call not admitted; undefined for an admitted call. */
  readonly reason: AuthErrorCode | undefined;
  /** The full name of the proto service, e.g. `"demo.v1.DemoService"`. */
  readonly service: string;
  /** The method's name in its service, e.g. `"WhoAmI"`. */
  readonly method: string;
  /** The RPC protocol the call came in on. */
  readonly protocol: "connect" | "grpc" | "grpc-web";
  /** The time the decision took, in seconds. */
  readonly seconds: number;
  /** The token's `sub` when a token verified (a claim value: keep it out of metrics). */
  readonly subject: string | undefined;
}

/**
 * KeyFetch is one fetch of keys or of a discovery document, begun by {@link Telemetry.keyFetch}.
 *
 * @example
 * ```ts
 * const keyFetch = (url: URL): KeyFetch => {
 *   const started = performance.now();
 *   return { end: (error) => console.log(url.host, error ? "failed" : "ok", performance.now() - started) };
 * };
 * ```
 */
export interface KeyFetch {
  /**
   * end says how the fetch ended: without an error when the document was had
   * and usable, else with the error that says why not (its message names the
   * URL and the failure, never a token).
   */
  end(error?: KeySetError): void;
}

/**
 * Telemetry is what connect-jwt tells an observer: each decision, each lookup
 * in the token cache, and each fetch of keys. `openTelemetry()` from
 * `connect-jwt/otel` makes one; any object with these three methods will do.
 * Its methods run on the request path, so they should be quick; whatever they
 * throw is ignored.
 *
 * @example
 * ```ts
 * const telemetry: Telemetry = {
 *   authenticated: (e) => console.log(e.outcome, e.reason ?? "", e.service, e.method),
 *   cacheLookup: (hit) => console.log(hit ? "cache hit" : "cache miss"),
 *   keyFetch: (url) => ({ end: (error) => console.log(url.host, error?.message ?? "ok") }),
 * };
 * const auth = createJwtAuth({ jwksUrl, audience: "notes-api", telemetry });
 * ```
 */
export interface Telemetry {
  /**
   * A call was decided, by the request gate (or by the interceptor when there
   * is no gate): once per call. A stream ended later, at its token's expiry,
   * is told to `onDenied` only.
   */
  authenticated(event: AuthenticationEvent): void;
  /**
   * The token cache was asked about a token: a hit when it answered (the
   * token's claims, or a refusal it remembers), a miss when the token had to
   * be verified.
   */
  cacheLookup(hit: boolean): void;
  /** A fetch of a JWKS or of a discovery document begins; the fetch ends the returned KeyFetch. */
  keyFetch(url: URL): KeyFetch;
}

const ignoredFetch: KeyFetch = { end() {} };

/**
 * checkTelemetry checks the `telemetry` option and returns a Telemetry that
 * never throws: a failing observer must not change a decision or crash the
 * server.
 */
export function checkTelemetry(telemetry: Telemetry | undefined): Telemetry | undefined {
  if (telemetry === undefined) {
    return undefined;
  }
  const methods = ["authenticated", "cacheLookup", "keyFetch"] as const;
  if (
    typeof telemetry !== "object" ||
    telemetry === null ||
    methods.some((m) => typeof telemetry[m] !== "function")
  ) {
    throw new TypeError(
      "telemetry must be openTelemetry() from connect-jwt/otel, or an object with the methods authenticated, cacheLookup and keyFetch",
    );
  }
  return {
    authenticated(event) {
      try {
        telemetry.authenticated(event);
      } catch {
        // Ignored, as a failing onDenied hook is.
      }
    },
    cacheLookup(hit) {
      try {
        telemetry.cacheLookup(hit);
      } catch {
        // Ignored.
      }
    },
    keyFetch(url) {
      let fetch: KeyFetch;
      try {
        fetch = telemetry.keyFetch(url);
      } catch {
        return ignoredFetch;
      }
      return {
        end(error) {
          try {
            fetch.end(error);
          } catch {
            // Ignored.
          }
        },
      };
    },
  };
}

/**
 * observeKeyFetch runs `fetch` (a fetch of `url` and the checks of what it
 * answered) as one key fetch the telemetry hears of.
 */
export async function observeKeyFetch<T>(
  telemetry: Telemetry | undefined,
  url: URL,
  fetch: () => Promise<T>,
): Promise<T> {
  if (telemetry === undefined) {
    return await fetch();
  }
  const observed = telemetry.keyFetch(url);
  try {
    const result = await fetch();
    observed.end();
    return result;
  } catch (err) {
    observed.end(err instanceof KeySetError ? err : new KeySetError("the keys were unusable"));
    throw err;
  }
}
