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
}

interface Entry {
  readonly token: string;
  readonly claims: JwtClaims;
  /** The token's `exp`, in seconds since the epoch. */
  readonly exp: number;
  /** When the entry must be verified afresh: `maxTtl`, or `maxTokenAge` if sooner. */
  readonly staleAt: number;
  readonly bytes: number;
  /** The neighbours in the order of use, least recent first. */
  older: Entry | undefined;
  newer: Entry | undefined;
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

function entryBytes(token: string, claims: JwtClaims): number {
  return entryOverheadBytes + token.length + 2 * valueBytes(claims);
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
 * until the token's `exp` at the latest; failures are never cached.
 */
export class TokenCache {
  // The entries by token, and the same entries in a list from least to most
  // recently used. A hit moves its entry to the end of the list without
  // touching the map; eviction takes the head. (Keeping the order in the map
  // itself, by deleting and setting again, leaves deleted slots at its front
  // that every eviction then walks over: several µs per set at 10,000 entries.)
  private readonly entries = new Map<string, Entry>();
  private oldest: Entry | undefined;
  private newest: Entry | undefined;
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly maxTtl: number;

  /** TokenCache's constructor; options are checked by the caller. */
  constructor(options: TokenCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
    this.maxTtl = options.maxTtl ?? 600;
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
   * get returns the claims of a cached token, or `undefined`. A token whose
   * `exp` has passed (beyond `toleranceSec`) is dropped and reported as
   * `"expired"`, so that the caller refuses it without verifying again; one
   * past `maxTokenAge` or `maxTtl` is dropped and reported missing, so that
   * the token is verified afresh.
   */
  get(token: string, nowSec: number, toleranceSec: number): JwtClaims | "expired" | undefined {
    const entry = this.entries.get(token);
    if (entry === undefined) {
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
    return entry.claims;
  }

  /** set remembers a verified token until its `exp` (or `staleAt`, if earlier). */
  set(token: string, claims: JwtClaims, exp: number, staleAt?: number): void {
    const old = this.entries.get(token);
    if (old !== undefined) {
      this.remove(old);
    }
    const bytes = entryBytes(token, claims);
    if (bytes > this.maxBytes || this.maxEntries === 0) {
      return;
    }
    const dropAt = Date.now() / 1000 + this.maxTtl;
    const entry: Entry = {
      token,
      claims,
      exp,
      staleAt: Math.min(staleAt ?? dropAt, dropAt),
      bytes,
      older: undefined,
      newer: undefined,
    };
    this.entries.set(token, entry);
    this.append(entry);
    this.bytes += bytes;
    while (
      (this.entries.size > this.maxEntries || this.bytes > this.maxBytes) &&
      this.oldest !== undefined
    ) {
      this.remove(this.oldest);
    }
  }

  private remove(entry: Entry): void {
    this.entries.delete(entry.token);
    this.unlink(entry);
    this.bytes -= entry.bytes;
  }

  private unlink(entry: Entry): void {
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

  private append(entry: Entry): void {
    entry.older = this.newest;
    if (this.newest === undefined) {
      this.oldest = entry;
    } else {
      this.newest.newer = entry;
    }
    this.newest = entry;
  }
}
