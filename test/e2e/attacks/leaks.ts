import * as assert from "node:assert/strict";

/**
 * assertNoLeakOnWire checks that `text` (what the client got: message, metadata,
 * body) holds no 8-character window of any segment of the credentials sent,
 * and no claim value decoded from them. Claim values that are part of the
 * expected fixed answer (a rule's scope in the challenge) are not secrets.
 */
export function assertNoLeakOnWire(
  text: string,
  credentials: readonly string[],
  extraSecrets: readonly string[],
  expected: readonly string[] = [],
): void {
  const windows = new Set<string>();
  const secrets = new Set(extraSecrets);
  for (const credential of credentials) {
    for (const part of credential.split(/[\s.,]+/)) {
      for (let i = 0; i + 8 <= part.length; i++) {
        windows.add(part.slice(i, i + 8));
      }
      for (const value of claimValuesOf(part)) {
        secrets.add(value);
      }
    }
  }
  for (const window of windows) {
    assert.ok(!text.includes(window), `a token segment leaked: ${JSON.stringify(window)}`);
  }
  for (const secret of secrets) {
    if (expected.some((e) => e.includes(secret))) continue;
    assert.ok(!text.includes(secret), `a claim value leaked: ${JSON.stringify(secret)}`);
  }
}

/** The string (4+ characters) and large number values of a base64url JSON segment, if it is one. */
export function claimValuesOf(segment: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
  } catch {
    return [];
  }
  const found: string[] = [];
  const walk = (v: unknown) => {
    if (typeof v === "string" && v.length >= 4) found.push(v);
    else if (typeof v === "number" && Number.isFinite(v) && Math.abs(v) >= 100_000) {
      found.push(String(v));
    } else if (typeof v === "object" && v !== null) {
      for (const item of Object.values(v)) walk(item);
    }
  };
  walk(value);
  return found;
}
