// The refused tokens of the refusal loads (run.ts, paired.ts): each kind a
// token that a server expecting `alg` tokens of the bench's issuer and
// audience refuses for one reason, as the `authorization` header's value.
import { type Alg, readKey, signer, validClaims } from "./keys.js";
import type { RefusalKind } from "./plan.js";

/**
 * refusedAuthorizations returns `count` distinct header values of one kind
 * (none for "missing"); `valid` holds at least `count` valid tokens, which the
 * bad signatures are made from.
 */
export function refusedAuthorizations(
  kind: RefusalKind,
  alg: Alg,
  valid: readonly string[],
  count = 1,
): (string | undefined)[] {
  const sign = signer(readKey(alg));
  // alg confusion: an HS256 token (signed with some secret) against a server
  // that accepts only `alg`.
  const hs = signer({ alg: "HS256", secret: "not-the-servers-secret-0123456789abcdefghij" });
  const now = Math.floor(Date.now() / 1000);
  const token: Record<Exclude<RefusalKind, "missing">, (i: number) => string> = {
    // Three base64url segments whose payload is not JSON: passes the syntax
    // check, fails decoding.
    malformed: (i) =>
      `eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.${Buffer.from(`not-json-${i}`).toString("base64url")}.c2lnbmF0dXJl`,
    expired: (i) => sign({ ...validClaims(1 + i, now - 7200), exp: now - 3600 }),
    "wrong-issuer": (i) =>
      sign({ ...validClaims(1 + i, now), iss: "https://other-issuer.example/" }),
    "wrong-audience": (i) => sign({ ...validClaims(1 + i, now), aud: "another-api" }),
    "wrong-algorithm": (i) => hs(validClaims(1 + i, now)),
    // One character changed in the middle of the signature: same length, same
    // syntax, a signature that does not verify.
    "bad-signature": (i) => {
      const [h, p, s = ""] = (valid[i] ?? "").split(".");
      const mid = Math.floor(s.length / 2);
      return `${h}.${p}.${s.slice(0, mid)}${s[mid] === "A" ? "B" : "A"}${s.slice(mid + 1)}`;
    },
  };
  return Array.from({ length: count }, (_, i) =>
    kind === "missing" ? undefined : `Bearer ${token[kind](i)}`,
  );
}
