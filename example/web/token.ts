// Tokens in the page: get one from the embedded issuer, read what it claims
// (unverified: only the server judges a token), and make a tampered copy.

/** What a token claims about itself, read without verifying it. */
export interface TokenSummary {
  readonly subject: string | undefined;
  readonly scopes: readonly string[];
  /** Seconds since the epoch. */
  readonly expiresAt: number | undefined;
  /** The thumbprint of the DPoP key the token is bound to (`cnf.jkt`), if any. */
  readonly boundTo: string | undefined;
}

/** The scopes of the demo, all of which a tampered token claims. */
export const demoScopes = ["notes:read", "notes:write", "chat"] as const;

/**
 * requestToken asks the embedded issuer for a token (`POST /demo/token`);
 * with a DPoP proof, for a token bound to the proof's key. It rejects with
 * the issuer's own error text (fixed strings that never repeat the input),
 * or the HTTP status.
 */
export async function requestToken(
  request: { sub: string; scope: string; ttl: number },
  dpopProof?: string,
): Promise<string> {
  const res = await fetch("/demo/token", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(dpopProof === undefined ? {} : { dpop: dpopProof }),
    },
    body: JSON.stringify(request),
  });
  const body: unknown = await res.json().catch(() => undefined);
  const field = (name: string) =>
    typeof body === "object" && body !== null ? (body as Record<string, unknown>)[name] : undefined;
  const token = field("token");
  if (!res.ok || typeof token !== "string") {
    // An OAuth error (a refused DPoP proof) says more in error_description.
    const error = field("error_description") ?? field("error");
    throw new Error(typeof error === "string" ? error : `the issuer answered HTTP ${res.status}`);
  }
  return token;
}

/** isCompactJws says whether `text` has the shape of a signed JWT: three base64url parts. */
export function isCompactJws(text: string): boolean {
  return /^[\w-]+\.[\w-]+\.[\w-]+$/.test(text);
}

/** summarize reads the subject, scopes and expiry a token claims, without verifying it. */
export function summarize(token: string): TokenSummary {
  const claims = payloadOf(token) ?? {};
  const { sub, scope, exp, cnf } = claims;
  const jkt = typeof cnf === "object" && cnf !== null ? (cnf as { jkt?: unknown }).jkt : undefined;
  return {
    subject: typeof sub === "string" ? sub : undefined,
    scopes: typeof scope === "string" ? scope.split(" ").filter(Boolean) : [],
    expiresAt: typeof exp === "number" ? exp : undefined,
    boundTo: typeof jkt === "string" ? jkt : undefined,
  };
}

/**
 * tamper edits a token's claims (subject `admin`, every demo scope) and keeps
 * its header and signature: what an attacker who holds a token might try. The
 * server must refuse it as `invalid_token`.
 */
export function tamper(token: string): string {
  const [header = "", , signature = ""] = token.split(".");
  const claims = { ...payloadOf(token), sub: "admin", scope: demoScopes.join(" ") };
  return `${header}.${base64url(new TextEncoder().encode(JSON.stringify(claims)))}.${signature}`;
}

function payloadOf(token: string): Record<string, unknown> | undefined {
  try {
    const part = token.split(".")[1] ?? "";
    const binary = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const json = new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
    const claims: unknown = JSON.parse(json);
    return typeof claims === "object" && claims !== null && !Array.isArray(claims)
      ? (claims as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function base64url(bytes: Uint8Array): string {
  const binary = Array.from(bytes, (b) => String.fromCharCode(b)).join("");
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
