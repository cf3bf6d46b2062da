import type { JWTVerifyGetKey } from "jose";
import { AuthError, safeCause } from "./errors.js";

/** Keys imported into WebCrypto once per algorithm, on first use. */
export interface KeyImports {
  /** The key for the token's `alg`, for jose; rejects with ERR_KEYS_UNAVAILABLE if it will not import. */
  readonly getKey: JWTVerifyGetKey;
  /** Imports the key for each of `algorithms` now; rejects as getKey does. */
  warmUp(algorithms: readonly string[]): Promise<void>;
}

/**
 * importOnUse imports a configured key once per algorithm, when a token
 * first needs it, and keeps the promise: WebCrypto imports are asynchronous,
 * options are checked synchronously, and given raw bytes or a JWK jose would
 * import them anew for every token (a third of an HS256 verification). A
 * failed import is tried again next time.
 */
export function importOnUse(importKey: (alg: string) => Promise<CryptoKey>): KeyImports {
  const keys = new Map<string, Promise<CryptoKey>>();
  function load(alg: string): Promise<CryptoKey> {
    let key = keys.get(alg);
    if (key === undefined) {
      key = importKey(alg).catch((err: unknown) => {
        keys.delete(alg);
        throw new AuthError("ERR_KEYS_UNAVAILABLE", { cause: safeCause(err) });
      });
      keys.set(alg, key);
    }
    return key;
  }
  return {
    // jose has refused any alg outside the allowlist before asking.
    getKey: ({ alg }) => load(String(alg)),
    async warmUp(algorithms) {
      await Promise.all(algorithms.map(load));
    },
  };
}
