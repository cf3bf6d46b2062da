import { checkUrl, type FetchLimits, fetchJson, KeySetError } from "./fetch-json.js";
import { observeKeyFetch, type Telemetry } from "./telemetry.js";

/**
 * discoverJwksUri returns a function that finds the issuer's JWKS URL through
 * OpenID Connect discovery, once: the document at
 * `<issuer>/.well-known/openid-configuration` must name exactly the
 * configured issuer (OpenID Connect Discovery 1.0, section 4.3), and a
 * `jwks_uri` under the same rules as a configured `jwksUrl`. A failed
 * discovery is retried on the next call; the caller's cooldown paces it.
 * The telemetry hears of each fetch of the document.
 */
export function discoverJwksUri(
  issuer: string,
  limits: FetchLimits,
  telemetry?: Telemetry,
): () => Promise<URL> {
  const base = issuer.endsWith("/") ? issuer.slice(0, -1) : issuer;
  const documentUrl = new URL(`${base}/.well-known/openid-configuration`);
  let found: URL | undefined;
  return async () => {
    if (found !== undefined) {
      return found;
    }
    found = await observeKeyFetch(telemetry, documentUrl, () =>
      jwksUriOf(documentUrl, issuer, limits),
    );
    return found;
  };
}

/** Fetches a discovery document and returns the JWKS URL it names; throws a KeySetError if it cannot. */
async function jwksUriOf(documentUrl: URL, issuer: string, limits: FetchLimits): Promise<URL> {
  const doc = await fetchJson(documentUrl, limits);
  if (doc.issuer !== issuer) {
    // The document is the issuer's public configuration, not token data: naming what it says is safe.
    throw new KeySetError(
      `${documentUrl.href} names the issuer ${describeIssuer(doc.issuer)}, not ${JSON.stringify(issuer)}; set issuerUrl to the issuer it names, exactly`,
    );
  }
  if (typeof doc.jwks_uri !== "string") {
    throw new KeySetError(`${documentUrl.href} has no jwks_uri`);
  }
  try {
    return checkUrl(doc.jwks_uri, "jwks_uri");
  } catch (err) {
    throw new KeySetError(
      `${documentUrl.href}: ${err instanceof Error ? err.message : "bad jwks_uri"}`,
    );
  }
}

/** The `issuer` a discovery document names, quoted and cut to a readable length. */
function describeIssuer(value: unknown): string {
  if (typeof value !== "string") {
    return value === undefined ? "(none)" : `of type ${typeof value}`;
  }
  const shown = value.length > 200 ? `${value.slice(0, 200)}…` : value;
  return JSON.stringify(shown);
}
