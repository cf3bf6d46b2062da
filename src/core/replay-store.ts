/**
 * DpopReplayStore remembers the DPoP proofs a server has accepted, so that a
 * proof is accepted once. `use` records `key` until `expiresAt` (epoch
 * seconds) and returns `true` the first time a key is used, `false` when it
 * was used before and has not expired. A store that throws (or rejects) makes
 * the call refused as unavailable (`ERR_DPOP_REPLAY_UNAVAILABLE`,
 * `Code.Unavailable`): a proof is never accepted unchecked.
 *
 * The default is {@link memoryReplayStore}, which protects one process;
 * `redisReplayStore()` from `connect-jwt/redis` protects replicas that share a
 * Redis server.
 *
 * @example
 * ```ts
 * const replayStore: DpopReplayStore = {
 *   use: (key, expiresAt) => sharedStore.setIfAbsent(key, expiresAt),
 * };
 * const auth = createJwtAuth({ jwks, algorithms: ["ES256"], dpop: { origins, replayStore } });
 * ```
 */
export interface DpopReplayStore {
  /** Records `key` until `expiresAt` (epoch seconds); `true` the first time, `false` for a replay. */
  use(key: string, expiresAt: number): boolean | Promise<boolean>;
}

/** Options of {@link memoryReplayStore}. */
export interface MemoryReplayStoreOptions {
  /**
   * The most proofs remembered at once. A server holds about (proofs per
   * second) × (`proofMaxAge` + `clockTolerance`) of them; when the store is
   * full of unexpired proofs, new proofs are refused as unavailable rather
   * than an entry forgotten (a forgotten entry is a replay). Default 1,000,000
   * (a few hundred MiB at most; about 3,000 new proofs a second with the
   * default `proofMaxAge`).
   */
  maxEntries?: number;
}

/**
 * memoryReplayStore is the default {@link DpopReplayStore}: a bounded map in
 * this process. It protects one process; replicas need a shared store.
 *
 * @example
 * ```ts
 * const auth = createJwtAuth({
 *   jwks,
 *   algorithms: ["ES256"],
 *   dpop: { origins: ["https://api.example.com"], replayStore: memoryReplayStore({ maxEntries: 200_000 }) },
 * });
 * ```
 */
export function memoryReplayStore(options: MemoryReplayStoreOptions = {}): DpopReplayStore {
  const maxEntries = options.maxEntries ?? 1_000_000;
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
    throw new TypeError("memoryReplayStore: maxEntries must be a positive integer");
  }
  const expiries = new Map<string, number>();
  let nextSweep = 0;
  return {
    use(key, expiresAt) {
      const now = Date.now() / 1000;
      const expiry = expiries.get(key);
      if (expiry !== undefined && expiry > now) {
        return false;
      }
      // A sweep walks every entry: at most once a second, and only when full.
      if (expiries.size >= maxEntries && now >= nextSweep) {
        nextSweep = now + 1;
        for (const [k, e] of expiries) {
          if (e <= now) {
            expiries.delete(k);
          }
        }
      }
      if (expiries.size >= maxEntries) {
        throw new Error("the DPoP replay store is full");
      }
      expiries.set(key, expiresAt);
      return true;
    },
  };
}
