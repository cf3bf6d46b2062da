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
  readonly claims: JwtClaims;
  /** The token's `exp`, in seconds since the epoch. */
  readonly exp: number;
  /** When the token grows older than `maxTokenAge`, if that is set. */
  readonly staleAt: number | undefined;
  readonly bytes: number;
}

// A generous estimate of an entry's footprint beyond its token: the claims
// (no larger than the token's payload) plus the map's and objects' overhead.
const overheadBytes = 256;

/**
 * TokenCache remembers verified tokens by their exact string, so that a token
 * seen again costs a map lookup instead of a signature check. An entry lives
 * until the token's `exp` at the latest; failures are never cached.
 */
export class TokenCache {
  private readonly entries = new Map<string, Entry>();
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
    this.entries.delete(token);
    if (entry.exp <= nowSec - toleranceSec) {
      this.bytes -= entry.bytes;
      return "expired";
    }
    if (entry.staleAt !== undefined && entry.staleAt < nowSec - toleranceSec) {
      this.bytes -= entry.bytes;
      return undefined;
    }
    this.entries.set(token, entry); // most recently used goes last
    return entry.claims;
  }

  /** set remembers a verified token until its `exp` (or `staleAt`, if earlier). */
  set(token: string, claims: JwtClaims, exp: number, staleAt?: number): void {
    const old = this.entries.get(token);
    if (old !== undefined) {
      this.entries.delete(token);
      this.bytes -= old.bytes;
    }
    const bytes = token.length * 2 + overheadBytes;
    if (bytes > this.maxBytes || this.maxEntries === 0) {
      return;
    }
    const dropAt = Date.now() / 1000 + this.maxTtl;
    this.entries.set(token, { claims, exp, staleAt: Math.min(staleAt ?? dropAt, dropAt), bytes });
    this.bytes += bytes;
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) {
        break;
      }
      this.entries.delete(oldest);
      this.bytes -= entry.bytes;
    }
  }
}
