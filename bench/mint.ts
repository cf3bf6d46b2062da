// Mints `count` distinct tokens for `alg` into a file, one per line: valid
// ones, or with "expired" as the last argument, tokens that expired an hour ago.
// Usage: node --import tsx mint.ts <alg> <count> <first index> <out file> [expired]
import { writeFileSync } from "node:fs";
import { type Alg, readKey, signer, validClaims } from "./keys.js";

const [alg, count, first, out, expired] = process.argv.slice(2);
if (alg === undefined || out === undefined) {
  console.error("usage: mint.ts <alg> <count> <first index> <out file>");
  process.exit(2);
}
const sign = signer(readKey(alg as Alg));
const start = Number(first);
const now = Math.floor(Date.now() / 1000);
const lines: string[] = [];
for (let i = 0; i < Number(count); i++) {
  const claims = validClaims(start + i, now);
  lines.push(
    sign(expired === "expired" ? { ...claims, iat: now - 7200, exp: now - 3600 } : claims),
  );
}
writeFileSync(out, `${lines.join("\n")}\n`);
