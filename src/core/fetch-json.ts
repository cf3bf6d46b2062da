/** Limits for {@link fetchJson}. */
export interface FetchLimits {
  /** Milliseconds for the whole exchange, headers and body. */
  readonly timeoutMs: number;
  /** The largest body accepted, in bytes; counted while reading. */
  readonly maxBodyBytes: number;
}

/**
 * KeySetError says why keys could not be had: the fetch failed, or the JWKS or
 * discovery document was unusable. Its message names the URL and the failure,
 * never the body, so it can be logged; it is the `cause` of the AuthError.
 */
export class KeySetError extends Error {
  /** Always `"KeySetError"`. */
  override readonly name = "KeySetError";
}

/**
 * fetchJson GETs a JSON object over HTTP(S) for key material: no redirects
 * (a redirect could hand the keys to another host), a timeout on the whole
 * exchange, and a body cap enforced while reading, so a hostile or broken
 * endpoint can neither hold a request nor fill the memory.
 */
export async function fetchJson(url: URL, limits: FetchLimits): Promise<Record<string, unknown>> {
  const signal = AbortSignal.timeout(limits.timeoutMs);
  const source = url.origin + url.pathname;
  let body: string;
  try {
    const res = await fetch(url, {
      redirect: "manual",
      signal,
      headers: { accept: "application/json, application/jwk-set+json" },
    });
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      throw new KeySetError(`${source} answered HTTP ${res.status}`);
    }
    const length = Number(res.headers.get("content-length") ?? 0);
    if (length > limits.maxBodyBytes) {
      await res.body?.cancel().catch(() => {});
      throw new KeySetError(`${source} sent more than ${limits.maxBodyBytes} bytes`);
    }
    body = await readCapped(res, limits.maxBodyBytes, source);
  } catch (err) {
    if (err instanceof KeySetError) {
      throw err;
    }
    const reason = signal.aborted
      ? `timed out after ${limits.timeoutMs} ms`
      : "could not be fetched";
    throw new KeySetError(`${source} ${reason}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new KeySetError(`${source} did not answer with JSON`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new KeySetError(`${source} did not answer with a JSON object`);
  }
  return json as Record<string, unknown>;
}

async function readCapped(res: Response, maxBytes: number, source: string): Promise<string> {
  const reader = res.body?.getReader();
  if (reader === undefined) {
    return "";
  }
  const decoder = new TextDecoder();
  let text = "";
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new KeySetError(`${source} sent more than ${maxBytes} bytes`);
    }
    text += decoder.decode(value, { stream: true });
  }
  return text + decoder.decode();
}

/**
 * checkUrl parses a URL for key material: HTTPS, or HTTP on a loopback
 * address (for development and tests), nothing else.
 */
export function checkUrl(value: string | URL, source: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`${source} is not a valid URL`);
  }
  // The URL parser writes every IPv4 address as four decimal numbers, so a
  // name that merely starts with "127." (127.0.0.1.nip.io) is not taken for one.
  const loopback =
    ["localhost", "[::1]"].includes(url.hostname) || /^127(\.\d{1,3}){3}$/.test(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    throw new TypeError(`${source} must use https (http is allowed only for loopback addresses)`);
  }
  return url;
}
