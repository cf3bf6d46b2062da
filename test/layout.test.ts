// The layout of test/ itself: test helpers never import the demo, and keys,
// tokens and the frozen clock come from one fixtures module.
import * as assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const fixtures = "test/helpers/fixtures.ts";

/** Every TypeScript file under `dir`, relative to the repository root. */
async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(join(root, dir), { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => relative(root, join(e.parentPath, e.name)))
    .sort();
}

/** The module specifiers `file` imports or re-exports, statically or with `import()`. */
function specifiers(text: string): string[] {
  const found = text.matchAll(/\b(?:from|import)\s*\(?\s*["']([^"']+)["']/g);
  return [...found].map((m) => m[1] ?? "");
}

/** The names `text` declares with `export` (functions, constants, classes, types). */
function exportedNames(text: string): string[] {
  const found = text.matchAll(
    /^export\s+(?:async\s+)?(?:function\*?|const|let|class|interface|type)\s+([A-Za-z0-9_$]+)/gm,
  );
  return [...found].map((m) => m[1] ?? "");
}

describe("test/ layout", () => {
  test("no test helper imports the demo (example/)", async () => {
    const helpers = await sources("test/helpers");
    assert.ok(helpers.includes("test/helpers/server.ts"), "the helpers were found");
    const offending: string[] = [];
    for (const file of helpers) {
      const text = await readFile(join(root, file), "utf8");
      for (const specifier of specifiers(text)) {
        const target = relative(root, resolve(dirname(join(root, file)), specifier));
        if (specifier.startsWith(".") && target.split(/[\\/]/)[0] === "example") {
          offending.push(`${file} imports ${specifier}`);
        }
      }
    }
    assert.deepEqual(offending, []);
  });

  test("keys, tokens and the frozen clock come from one fixtures module", async () => {
    const names = exportedNames(await readFile(join(root, fixtures), "utf8"));
    for (const name of ["keyPair", "generateTestKey", "mint", "freezeClock", "frozenNowMs"]) {
      assert.ok(names.includes(name), `${fixtures} exports ${name}`);
    }
    const again: string[] = [];
    for (const file of await sources("test")) {
      if (file === fixtures) {
        continue;
      }
      const text = await readFile(join(root, file), "utf8");
      for (const name of exportedNames(text).filter((n) => names.includes(n))) {
        again.push(`${file} exports ${name}`);
      }
    }
    assert.deepEqual(again, [], `only ${fixtures} exports fixtures`);
  });
});
