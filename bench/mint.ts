// Mints `count` distinct valid tokens for `alg` into a file, one per line.
// Usage: node --import tsx bench/mint.ts <alg> <count> <first index> <out file>
import { writeFileSync } from "node:fs";
import { type Alg, readKey, signer, validClaims } from "./keys.js";

const [alg, count, first, out] = process.argv.slice(2);
if (alg === undefined || out === undefined) {
  console.error("usage: bench/mint.ts <alg> <count> <first index> <out file>");
  process.exit(2);
}
const sign = signer(readKey(alg as Alg));
const start = Number(first);
const lines: string[] = [];
for (let i = 0; i < Number(count); i++) {
  lines.push(sign(validClaims(start + i)));
}
writeFileSync(out, `${lines.join("\n")}\n`);
