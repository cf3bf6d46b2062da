// The README's runtime table says which protocols each runtime serves; this
// test holds it to what the suites run: test/e2e/protocols.test.ts on Node.js
// over `transports`, test/e2e/edge-runtimes.test.ts on each of `edgeRuntimes`
// over `edgeProtocols`.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { edgeProtocols, edgeRuntimes } from "../helpers/edge-runtime.js";
import { root } from "../helpers/neutral-bundle.js";
import { transports } from "../helpers/server.js";

const columns = { Connect: "connect", "gRPC-Web": "grpc-web", gRPC: "grpc" } as const;

/** The table's rows: each runtime with the protocols it says "yes" to. */
async function readmeTable(): Promise<Record<string, string[]>> {
  const readme = await readFile(join(root, "README.md"), "utf8");
  const lines = readme.split("\n");
  const start = lines.findIndex((line) => line.startsWith("| runtime |"));
  assert.ok(start >= 0, "the README lost its runtime table");
  const cells = (line: string) =>
    line
      .slice(1, -1)
      .split("|")
      .map((cell) => cell.trim());
  const header = cells(lines[start] ?? "");
  const rows: Record<string, string[]> = {};
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) {
      break;
    }
    const [runtime = "", ...values] = cells(line);
    rows[runtime] = values.flatMap((value, i) => {
      const protocol = columns[header[i + 1] as keyof typeof columns];
      if (protocol === undefined) {
        return [];
      }
      assert.match(value, /^(yes|no)$/, `${runtime}: "${value}" under ${header[i + 1]}`);
      return value === "yes" ? [protocol] : [];
    });
  }
  return rows;
}

test("the README's runtime table lists the runtimes and protocols the suites run", async () => {
  const tested: Record<string, string[]> = {
    "Node.js": [...new Set(transports.map((t) => t.protocol))],
  };
  for (const runtime of edgeRuntimes) {
    tested[runtime.title] = edgeProtocols.map((p) => p.name);
  }
  const sorted = (table: Record<string, string[]>) =>
    Object.fromEntries(Object.entries(table).map(([runtime, p]) => [runtime, [...p].sort()]));
  assert.deepEqual(sorted(await readmeTable()), sorted(tested));
});
