import type { JwtClaims } from "./claims.js";

/**
 * TokenCacheOptions bound the verified-token cache. Both bounds hold at once;
 * the least recently used entries go first.
 */
export interface TokenCacheOptions {
  /** The most tokens kept. Default 10,000. */
  maxEntries?: number;
  /** The most memory the entries may take, estimated in bytes. Default 16 MiB. */
  maxBytes?: number;
  /**
   * The longest an entry lives, in seconds, however far its `exp`: a token
   * whose key was rotated out is re-verified within this time. Default 600.
   */
  maxTtl?: number;
  /**
   * The most refused tokens remembered, each with its reason, so that a client
   * that sends one again is refused by a lookup. Only refusals that no key and
   * no passing time can change are remembered: a malformed token, a wrong
   * `alg`, `typ`, `iss` or `aud`, a missing or invalid claim, an expired or
   * too old token; never a signature, a key, a revocation or a token not yet
   * valid. A refused token is remembered when it comes a second time.
   * Default 1,000; 0 remembers none.
   */
  maxRefusals?: number;
}

interface CacheEntry<V> {
  /** The token's fingerprint: its key in the map. */
  readonly key: number;
  readonly token: string;
  /** The token's claims, or the reason it was refused. */
  readonly value: V;
  /** The token's `exp`, in seconds since the epoch. */
  readonly exp: number;
  /** When the entry must be verified afresh: `maxTtl`, or `maxTokenAge` if sooner. */
  readonly staleAt: number;
  readonly bytes: number;
  /** The neighbours in the order of use, least recent first. */
  older: CacheEntry<V> | undefined;
  newer: CacheEntry<V> | undefined;
}

// What an entry takes on the heap, estimated from above. Measured on Node.js
// 24 (bench/memory.ts, and tokens with many claims, long claims and 40 roles):
// the token (one byte a character) and, for each entry, about 600 bytes for
// the map's slot, the entry, its numbers, and the scope and role sets a rule
// that reads them keeps beside the claims for as long as they live; the
// frozen claims (their strings, numbers, arrays and objects) counted twice,
// for those sets' members. A typical access token is estimated at 1.6 KiB; it
// takes 0.9 KiB, or 1.5 KiB with its sets.
const entryOverheadBytes = 640;

function entryBytes(token: string, value: unknown): number {
  return entryOverheadBytes + token.length + 2 * valueBytes(value);
}

function valueBytes(value: unknown): number {
  switch (typeof value) {
    case "string":
      return 24 + value.length;
    case "number":
      return 16;
    case "object": {
      if (value === null) {
        return 0;
      }
      let bytes = 32;
      if (Array.isArray(value)) {
        for (const item of value) {
          bytes += 8 + valueBytes(item);
        }
        return bytes;
      }
      for (const key of Object.keys(value)) {
        bytes += 16 + valueBytes((value as Record<string, unknown>)[key]);
      }
      return bytes;
    }
    default:
      return 8;
  }
}

/**
 * TokenCache remembers verified tokens by their exact string, so that a token
 * seen again costs a map lookup instead of a signature check. An entry lives
 * until the token's `exp` at the latest. (The verifier keeps a second, small
 * one of refused tokens and their reasons: `V` is then the reason.)
 *
 * A token is admitted on its second verification
 * ({@link TokenCache.admitOnSecondSight}): the first one only leaves a 4-byte
 * fingerprint in a fixed table. Tokens used once (a client that fetches a
 * token per call, a burst of logins, a flood of fresh tokens) then never
 * displace the tokens in use: a property the cache tests check, since a
 * cache that a flood can empty would put every caller back on the signature
 * check.
 */
export class TokenCache<V = JwtClaims> {
  // The entries by token, and the same entries in a list from least to most
  // recently used. A hit moves its entry to the end of the list without
  // touching the map; eviction takes the head. (Keeping the order in the map
  // itself, by deleting and setting again, leaves deleted slots at its front
  // that every eviction then walks over: several µs per set at 10,000 entries.)
  //
  // The map is keyed by the token's fingerprint, a small integer, and a hit
  // compares the whole token with the entry's: hashing the token itself, a
  // new string on every call, took 1.5 µs a lookup in a server. Two cached
  // tokens with one fingerprint (one chance in 10^5 per insert at 10,000
  // entries) cannot both stay: the newer replaces the older.
  private readonly entries = new Map<number, CacheEntry<V>>();
  private oldest: CacheEntry<V> | undefined;
  private newest: CacheEntry<V> | undefined;
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly maxTtl: number;
  // Fingerprints of tokens verified once, twice as many slots as entries.
  // Each token has two slots: it is recorded in an empty one if it can, or
  // else in either, alternately, so that two tokens sharing a slot and used
  // by turns still find their own fingerprint soon.
  private readonly seenOnce: Int32Array;
  private replaceSecondSlot = false;

  /** TokenCache's constructor; options are checked by the caller. */
  constructor(options: TokenCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
    this.maxTtl = options.maxTtl ?? 600;
    let slots = 1024;
    while (slots < 2 * this.maxEntries && slots < 1 << 20) {
      slots *= 2;
    }
    this.seenOnce = new Int32Array(this.maxEntries === 0 ? 1 : slots);
  }

  /** How many tokens are cached. */
  get size(): number {
    return this.entries.size;
  }

  /** The estimated bytes the entries take. */
  get estimatedBytes(): number {
    return this.bytes;
  }

  /**
   * get returns the value (the claims) of a cached token, or `undefined`. A
   * token whose `exp` has passed (beyond `toleranceSec`) is dropped and reported as
   * `"expired"`, so that the caller refuses it without verifying again; one
   * past `maxTokenAge` or `maxTtl` is dropped and reported missing, so that
   * the token is verified afresh.
   */
  get(token: string, nowSec: number, toleranceSec: number): V | "expired" | undefined {
    const entry = this.entries.get(fingerprint(token));
    if (entry === undefined || entry.token !== token) {
      return undefined;
    }
    if (entry.exp <= nowSec - toleranceSec) {
      this.remove(entry);
      return "expired";
    }
    if (entry.staleAt < nowSec - toleranceSec) {
      this.remove(entry);
      return undefined;
    }
    if (entry !== this.newest) {
      this.unlink(entry);
      this.append(entry); // most recently used goes last
    }
    return entry.value;
  }

  /**
   * admitOnSecondSight caches a verified token if it was verified before (its
   * fingerprint is still in the table), and otherwise only records its
   * fingerprint. Returns whether the token was cached.
   */
  admitOnSecondSight(token: string, value: V, exp: number, staleAt?: number): boolean {
    const key = fingerprint(token);
    const recorded = key + 1; // never 0, the value of an empty slot
    const { seenOnce } = this;
    const mask = seenOnce.length - 1;
    const a = key & mask;
    const b = (Math.imul(key, 0x9e3779b1) >>> 12) & mask;
    if (seenOnce[a] === recorded || seenOnce[b] === recorded) {
      this.store(key, token, value, exp, staleAt);
      return true;
    }
    if (seenOnce[a] === 0) {
      seenOnce[a] = recorded;
    } else if (seenOnce[b] === 0) {
      seenOnce[b] = recorded;
    } else {
      this.replaceSecondSlot = !this.replaceSecondSlot;
      seenOnce[this.replaceSecondSlot ? b : a] = recorded;
    }
    return false;
  }

  /** insert caches a verified token at once, until its `exp` (or `staleAt`, if earlier). */
  insert(token: string, value: V, exp: number, staleAt?: number): void {
    this.store(fingerprint(token), token, value, exp, staleAt);
  }

  private store(key: number, token: string, value: V, exp: number, staleAt?: number) {
    const old = this.entries.get(key);
    if (old !== undefined) {
      this.remove(old);
    }
    const bytes = entryBytes(token, value);
    if (bytes > this.maxBytes || this.maxEntries === 0) {
      return;
    }
    const dropAt = Date.now() / 1000 + this.maxTtl;
    const entry: CacheEntry<V> = {
      key,
      token,
      value,
      exp,
      staleAt: Math.min(staleAt ?? dropAt, dropAt),
      bytes,
      older: undefined,
      newer: undefined,
    };
    this.entries.set(key, entry);
    this.append(entry);
    this.bytes += bytes;
    while (
      (this.entries.size > this.maxEntries || this.bytes > this.maxBytes) &&
      this.oldest !== undefined
    ) {
      this.remove(this.oldest);
    }
  }

  private remove(entry: CacheEntry<V>): void {
    this.entries.delete(entry.key);
    this.unlink(entry);
    this.bytes -= entry.bytes;
  }

  private unlink(entry: CacheEntry<V>): void {
    if (entry.older === undefined) {
      this.oldest = entry.newer;
    } else {
      entry.older.newer = entry.newer;
    }
    if (entry.newer === undefined) {
      this.newest = entry.older;
    } else {
      entry.newer.older = entry.older;
    }
    entry.older = undefined;
    entry.newer = undefined;
  }

  private append(entry: CacheEntry<V>): void {
    entry.older = this.newest;
    if (this.newest === undefined) {
      this.oldest = entry;
    } else {
      this.newest.newer = entry;
    }
    this.newest = entry;
  }
}

/**
 * fingerprint hashes the last characters of a token (FNV-1a) to 30 bits (a
 * small integer in V8). They are its signature's, which differ between any
 * two tokens an issuer signs. Nothing depends on fingerprints being unique: a
 * hit compares the whole token, and a collision in the admission table only
 * admits a token a verification early or late.
 */
function fingerprint(token: string): number {
  let hash = 0x811c9dc5;
  for (let i = Math.max(0, token.length - 16); i < token.length; i++) {
    hash = Math.imul(hash ^ token.charCodeAt(i), 0x01000193);
  }
  return (hash ^ (hash >>> 15)) & 0x3fffffff;
}
