import { maxTtl } from "./dev-issuer.js";
import { type AnyRequest, type AnyResponse, readBody, sendJson } from "./http-io.js";
import type { Endpoint } from "./issuer-endpoints.js";
import { type DemoRevocations, RevocationsFullError } from "./revocations.js";

/** The path of the demo's revocation endpoint. */
export const revokePath = "/demo/revoke";

/** The largest revocation request body accepted, in bytes. */
export const maxRevokeRequestBytes = 1024;

/** The longest `jti` or `sub` accepted, in characters (as the dev issuer's `sub`). */
const maxValueLength = 256;

/**
 * RevokeRequestError is a refused revocation request; its message is fixed
 * text that never repeats what the caller sent.
 */
class RevokeRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * revokeEndpoint serves `POST /demo/revoke` with `{"jti": "…"}` (that token)
 * or `{"sub": "…"}` (every token of that subject issued before now), for the
 * embedded issuer's tokens: a `jti` is refused for the longest life the
 * issuer gives a token. Like `/demo/token`, anyone may call it: a demo only.
 *
 * @example
 * ```ts
 * const endpoint = revokeEndpoint(await demoRevocations());
 * // in a fallback handler: if (!endpoint(req, res, path)) { … }
 * ```
 */
export function revokeEndpoint(revocations: DemoRevocations): Endpoint {
  return (req, res, path) => {
    if (path !== revokePath) {
      return false;
    }
    if (req.method !== "POST") {
      sendJson(res, 405, { error: "use POST" }, { allow: "POST" });
      return true;
    }
    revoke(revocations, req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
      } else if (err instanceof RevokeRequestError) {
        sendJson(res, err.status, { error: err.message });
      } else if (err instanceof RevocationsFullError) {
        sendJson(res, 503, { error: err.message });
      } else {
        // Redis could not be reached: the cause stays private.
        sendJson(res, 503, { error: "the revocation list cannot be reached" });
      }
    });
    return true;
  };
}

async function revoke(revocations: DemoRevocations, req: AnyRequest, res: AnyResponse) {
  const { jti, sub } = await readRevokeRequest(req);
  if (jti !== undefined) {
    // The embedded issuer's tokens live maxTtl at most: refused that long, none outlives it.
    await revocations.revokeToken({ jti, exp: Math.ceil(Date.now() / 1000) + maxTtl });
    sendJson(res, 200, { revoked: "jti" });
  } else if (sub !== undefined) {
    await revocations.revokeSubject(sub);
    sendJson(res, 200, { revoked: "sub" });
  }
}

async function readRevokeRequest(req: AnyRequest): Promise<{ jti?: string; sub?: string }> {
  const bytes = await readBody(req, maxRevokeRequestBytes);
  if (bytes === undefined) {
    throw new RevokeRequestError(413, `the body is larger than ${maxRevokeRequestBytes} bytes`);
  }
  const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json") {
    throw new RevokeRequestError(
      415,
      "send the body as JSON with the header Content-Type: application/json (curl: -H 'Content-Type: application/json')",
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new RevokeRequestError(400, "the body is not valid UTF-8 JSON");
  }
  const fields = typeof body === "object" && body !== null && !Array.isArray(body) ? body : {};
  const names = Object.keys(fields);
  const [name] = names;
  if (names.length !== 1 || (name !== "jti" && name !== "sub")) {
    throw new RevokeRequestError(400, 'send one field: {"jti": "…"} or {"sub": "…"}');
  }
  const value: unknown = (fields as Record<string, unknown>)[name];
  if (typeof value !== "string" || value === "" || value.length > maxValueLength) {
    throw new RevokeRequestError(
      400,
      `${name} must be a string of 1 to ${maxValueLength} characters`,
    );
  }
  return { [name]: value };
}
