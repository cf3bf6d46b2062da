import { urlOf } from "./listen.js";

/**
 * parsePublicOrigins reads the `PUBLIC_ORIGIN` variable: the origins clients
 * call the demo as (comma-separated), when that is not the address it listens
 * on, e.g. behind a proxy. Unset or empty means "the listening address"
 * (`undefined`). Each entry must be a bare http(s) origin such as
 * `https://demo.example.com`, without path or trailing slash; a mistake
 * throws a `TypeError` that says how to write it.
 *
 * @example
 * ```ts
 * parsePublicOrigins("https://demo.example.com"); // ["https://demo.example.com"]
 * ```
 */
export function parsePublicOrigins(value: string | undefined): string[] | undefined {
  const entries = (value ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (entries.length === 0) {
    return undefined;
  }
  for (const entry of entries) {
    const url = URL.canParse(entry) ? new URL(entry) : undefined;
    if (url === undefined || !["http:", "https:"].includes(url.protocol) || url.origin !== entry) {
      throw new TypeError(
        `PUBLIC_ORIGIN: ${JSON.stringify(entry)} is not an origin; write it like https://demo.example.com`,
      );
    }
  }
  return entries;
}

/**
 * listeningOrigins are the origins a client on this machine reaches the demo
 * at: its own URL, and 127.0.0.1 and localhost on its port, with the scheme
 * it serves (https with TLS). DPoP proofs name one of these in `htu`.
 *
 * @example
 * ```ts
 * listeningOrigins("http://127.0.0.1:8080", 8080);
 * // ["http://127.0.0.1:8080", "http://localhost:8080"]
 * ```
 */
export function listeningOrigins(url: string, port: number): string[] {
  const scheme = url.startsWith("https:") ? "https" : "http";
  return [...new Set([url, urlOf(scheme, "127.0.0.1", port), urlOf(scheme, "localhost", port)])];
}
