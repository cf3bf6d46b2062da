import { createLocalJWKSet, errors, type JWK, type JWTVerifyGetKey } from "jose";
import { AuthError, safeCause } from "./errors.js";
import { type FetchLimits, fetchJson, KeySetError } from "./fetch-json.js";
import { checkPublicJwk } from "./public-key.js";
import { observeKeyFetch, type Telemetry } from "./telemetry.js";

/** Timing and size limits of a remote key set, all in milliseconds and bytes. */
export interface RemoteKeySetLimits extends FetchLimits {
  /** The least time between two fetches, whether they failed or not. */
  readonly cooldownMs: number;
  /** After this, keys are refetched (in the background) on next use. */
  readonly maxAgeMs: number;
  /** How long past `maxAgeMs` keys keep verifying while refetches fail. */
  readonly staleIfErrorMs: number;
}

/** The defaults of {@link RemoteKeySetLimits}. */
export const defaultRemoteLimits: RemoteKeySetLimits = {
  timeoutMs: 5_000,
  maxBodyBytes: 1024 * 1024,
  cooldownMs: 30_000,
  maxAgeMs: 10 * 60_000,
  staleIfErrorMs: 60 * 60_000,
};

/** A key set whose keys come over the network. */
export interface RemoteKeySet {
  /** Picks the key for a token, fetching the set when it is missing, old, or lacks the `kid`. */
  readonly getKey: JWTVerifyGetKey;
  /** Fetches the keys now; rejects with an AuthError if they cannot be had. */
  warmUp(): Promise<void>;
  /** How many fetches were started, for tests and metrics. */
  readonly fetches: number;
}

interface Loaded {
  readonly keyFor: JWTVerifyGetKey;
  readonly at: number;
}

/**
 * createRemoteKeySet serves keys from a JWKS URL (or from the URL a function
 * resolves to, for OIDC discovery). Many concurrent callers share one fetch;
 * at most one fetch starts per cooldown window, whatever the traffic and
 * whether the endpoint answers or fails; keys fetched before keep verifying
 * for a bounded time while refetches fail. The telemetry hears of each fetch
 * of the JWKS.
 */
export function createRemoteKeySet(
  locate: () => Promise<URL>,
  limits: RemoteKeySetLimits = defaultRemoteLimits,
  telemetry?: Telemetry,
): RemoteKeySet {
  let loaded: Loaded | undefined;
  let inflight: Promise<void> | undefined;
  let lastAttempt = Number.NEGATIVE_INFINITY;
  let lastError: unknown;
  let fetches = 0;

  function refresh(): Promise<void> {
    if (inflight !== undefined) {
      return inflight;
    }
    if (Date.now() - lastAttempt < limits.cooldownMs) {
      return Promise.resolve();
    }
    lastAttempt = Date.now();
    fetches++;
    inflight = (async () => {
      try {
        const url = await locate();
        const keyFor = await observeKeyFetch(telemetry, url, async () =>
          createLocalJWKSet({ keys: usableKeys(await fetchJson(url, limits)) }),
        );
        loaded = { keyFor, at: Date.now() };
        lastError = undefined;
      } catch (err) {
        lastError = err;
      } finally {
        inflight = undefined;
      }
    })();
    return inflight;
  }

  function usable(): Loaded | undefined {
    if (loaded !== undefined && Date.now() - loaded.at > limits.maxAgeMs + limits.staleIfErrorMs) {
      loaded = undefined;
    }
    return loaded;
  }

  function unavailable(): AuthError {
    // Our own errors say what failed (URL, status, timeout) and hold no token.
    const cause = lastError instanceof KeySetError ? lastError : safeCause(lastError);
    return new AuthError("ERR_KEYS_UNAVAILABLE", { cause });
  }

  return {
    get fetches() {
      return fetches;
    },
    async warmUp() {
      await refresh();
      if (usable() === undefined) {
        throw unavailable();
      }
    },
    async getKey(header, token) {
      let keys = usable();
      if (keys === undefined) {
        await refresh();
        keys = usable();
        if (keys === undefined) {
          throw unavailable();
        }
      } else if (Date.now() - keys.at > limits.maxAgeMs) {
        void refresh(); // old but usable: refetch without making this call wait
      }
      try {
        return await keys.keyFor(header, token);
      } catch (err) {
        if (!(err instanceof errors.JWKSNoMatchingKey)) {
          throw err;
        }
        // An unknown kid may be a new key: refetch, unless the cooldown forbids.
        const before = keys;
        await refresh();
        keys = usable();
        if (keys === undefined || keys === before) {
          throw err;
        }
        return keys.keyFor(header, token);
      }
    },
  };
}

const privateMembers = ["d", "p", "q", "dp", "dq", "qi", "k"];

/**
 * usableKeys reads the `keys` of a JWKS document. A document that holds
 * private or symmetric key material is refused whole: the issuer has published
 * a secret, and anyone could sign with it. Keys we cannot use safely (weak
 * RSA, unsupported types, encryption keys) are left out.
 */
function usableKeys(doc: Record<string, unknown>): JWK[] {
  const { keys } = doc;
  if (!Array.isArray(keys)) {
    throw new KeySetError("the JWKS document has no keys array");
  }
  const usableKeys: JWK[] = [];
  for (const key of keys as unknown[]) {
    if (typeof key !== "object" || key === null) {
      continue;
    }
    if (privateMembers.some((m) => m in key)) {
      throw new KeySetError("the JWKS document holds private or symmetric key material");
    }
    const jwk = key as JWK;
    if (jwk.use !== undefined && jwk.use !== "sig") {
      continue;
    }
    if (checkPublicJwk(jwk)) {
      usableKeys.push(jwk);
    }
  }
  return usableKeys;
}
