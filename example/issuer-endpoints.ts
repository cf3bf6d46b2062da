import { checkTokenRequest, type DevIssuer, TokenRequestError } from "./dev-issuer.js";
import { type AnyRequest, type AnyResponse, readBody, sendJson } from "./http-io.js";
import { TokenProofError, type TokenProofs, tokenProofAlgorithms } from "./token-proof.js";

/** The paths the embedded issuer answers on. */
export const issuerPaths = {
  discovery: "/.well-known/openid-configuration",
  jwks: "/.well-known/jwks.json",
  token: "/demo/token",
} as const;

/** The largest token request body accepted, in bytes. */
export const maxTokenRequestBytes = 16 * 1024;

/**
 * An endpoint handler that answers the request and returns `true`, or leaves
 * it alone and returns `false` for the next handler.
 */
export type Endpoint = (req: AnyRequest, res: AnyResponse, path: string) => boolean;

/**
 * issuerEndpoints serves what a real issuer publishes (OIDC discovery and the
 * JWKS) plus `POST /demo/token`, which mints a token for anyone who asks: it
 * is for the demo only, which is why the issuer's keys die with the process.
 * A token request with a `DPoP` proof, checked by `proofs`, gets a token
 * bound to the proof's key (RFC 9449 §5).
 */
export function issuerEndpoints(issuer: DevIssuer, proofs: TokenProofs): Endpoint {
  const discovery = {
    issuer: issuer.issuer,
    jwks_uri: `${issuer.issuer}${issuerPaths.jwks}`,
    // Not an OAuth token endpoint (it takes JSON, not a grant), so it gets a
    // name of its own rather than `token_endpoint`.
    demo_token_endpoint: `${issuer.issuer}${issuerPaths.token}`,
    response_types_supported: ["token"],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: ["ES256"],
    token_endpoint_auth_methods_supported: ["none"],
    claims_supported: ["iss", "sub", "aud", "exp", "iat", "jti", "scope", "cnf"],
    dpop_signing_alg_values_supported: tokenProofAlgorithms,
  };
  const jwks = { keys: [issuer.publicJwk] };
  return (req, res, path) => {
    switch (path) {
      case issuerPaths.discovery:
        return serveGet(req, res, discovery);
      case issuerPaths.jwks:
        return serveGet(req, res, jwks);
      case issuerPaths.token:
        if (req.method !== "POST") {
          sendJson(res, 405, { error: "use POST" }, { allow: "POST" });
        } else {
          mintFor(issuer, proofs, req, res).catch(() => {
            // Signing failed or the client went away; the error stays private.
            if (res.headersSent) {
              res.destroy();
            } else {
              sendJson(res, 500, { error: "internal error" });
            }
          });
        }
        return true;
      default:
        return false;
    }
  };
}

function serveGet(req: AnyRequest, res: AnyResponse, body: unknown) {
  if (req.method !== "GET" && req.method !== "HEAD") {
    sendJson(res, 405, { error: "use GET" }, { allow: "GET, HEAD" });
  } else {
    // The key pair lives only as long as the process: let clients cache it briefly.
    sendJson(res, 200, body, { "cache-control": "public, max-age=60" });
  }
  return true;
}

async function mintFor(issuer: DevIssuer, proofs: TokenProofs, req: AnyRequest, res: AnyResponse) {
  // Tokens must never sit in a cache (RFC 6749 section 5.1).
  const noStore = { "cache-control": "no-store" };
  const bytes = await readBody(req, maxTokenRequestBytes);
  if (bytes === undefined) {
    sendJson(res, 413, { error: `the body is larger than ${maxTokenRequestBytes} bytes` }, noStore);
    return;
  }
  let body: unknown = {};
  if (bytes.byteLength > 0) {
    // Requiring JSON also means a plain HTML form on another site cannot post here.
    const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
    if (type !== "application/json") {
      // curl -d sends application/x-www-form-urlencoded: say what to send instead.
      const error =
        "send the body as JSON with the header Content-Type: application/json (curl: -H 'Content-Type: application/json')";
      sendJson(res, 415, { error }, noStore);
      return;
    }
    try {
      body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch {
      sendJson(res, 400, { error: "the body is not valid UTF-8 JSON" }, noStore);
      return;
    }
  }
  let request: ReturnType<typeof checkTokenRequest>;
  try {
    request = checkTokenRequest(body);
  } catch (err) {
    if (!(err instanceof TokenRequestError)) {
      throw err;
    }
    // Fixed text that never repeats the input: safe to send back.
    sendJson(res, 400, { error: err.message }, noStore);
    return;
  }
  const proof = req.headers.dpop;
  if (proof === undefined) {
    const token = await issuer.mint(request);
    sendJson(res, 200, { token, token_type: "Bearer", expires_in: request.ttl }, noStore);
    return;
  }
  let jkt: string;
  try {
    jkt = await proofs.thumbprintOf(proof);
  } catch (err) {
    if (!(err instanceof TokenProofError)) {
      throw err;
    }
    // RFC 9449 §5: an OAuth error; the description is fixed text, never the proof.
    sendJson(res, err.status, { error: err.error, error_description: err.message }, noStore);
    return;
  }
  const token = await issuer.mint(request, { jkt });
  sendJson(res, 200, { token, token_type: "DPoP", expires_in: request.ttl }, noStore);
}
