import { base64url } from "jose";
import { type Duration, parseDuration } from "./duration.js";

/** Options of server-issued DPoP nonces (RFC 9449, section 8). */
export interface DpopNonceOptions {
  /**
   * The secret the nonces are derived from: at least 32 bytes (a string of at
   * least 32 characters, or bytes). Replicas that share it share the nonces.
   */
  secret: string | Uint8Array;
  /**
   * How long a nonce is current. A proof may carry the current nonce or the
   * one before it, so a nonce is accepted for one to two lifetimes. Default
   * `"5m"`.
   */
  lifetime?: Duration;
}

/** The nonces of a server: the current one, and whether a proof's nonce is accepted. */
export interface DpopNonces {
  /** The nonce to hand out now. */
  current(): Promise<string>;
  /** Whether `nonce` is the current nonce or the one before it. */
  accepts(nonce: unknown): Promise<boolean>;
}

/**
 * Compiles the `dpop.nonce` option. A nonce is the HMAC-SHA-256 of a window of
 * time under the secret: nothing is stored, and every replica with the secret
 * issues and accepts the same nonces.
 */
export function createDpopNonces(options: DpopNonceOptions): DpopNonces {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("nonce must be an object like { secret }");
  }
  const secret =
    typeof options.secret === "string" ? new TextEncoder().encode(options.secret) : options.secret;
  if (!(secret instanceof Uint8Array) || secret.byteLength < 32) {
    throw new TypeError("nonce.secret must be at least 32 bytes (a string or a Uint8Array)");
  }
  const lifetime = parseDuration(options.lifetime, "nonce.lifetime") ?? 300;
  if (lifetime < 1) {
    throw new TypeError("nonce.lifetime must be at least 1 second");
  }
  const key = crypto.subtle.importKey(
    "raw",
    secret.slice(),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  // The nonces of the last two windows, computed once each.
  const byWindow = new Map<number, Promise<string>>();

  function nonceOf(window: number): Promise<string> {
    let nonce = byWindow.get(window);
    if (nonce === undefined) {
      nonce = key
        .then((k) =>
          crypto.subtle.sign("HMAC", k, new TextEncoder().encode(`dpop-nonce ${window}`)),
        )
        .then((mac) => base64url.encode(new Uint8Array(mac)));
      byWindow.set(window, nonce);
      for (const w of byWindow.keys()) {
        if (w < window - 1) {
          byWindow.delete(w);
        }
      }
    }
    return nonce;
  }

  function windowNow(): number {
    return Math.floor(Date.now() / 1000 / lifetime);
  }

  return {
    current: () => nonceOf(windowNow()),
    async accepts(nonce) {
      if (typeof nonce !== "string") {
        return false;
      }
      const window = windowNow();
      return nonce === (await nonceOf(window)) || nonce === (await nonceOf(window - 1));
    },
  };
}
