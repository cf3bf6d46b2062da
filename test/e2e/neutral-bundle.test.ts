// The promise that `connect-jwt` and `connect-jwt/client` run on every
// fetch-API runtime (Bun, Deno, Cloudflare Workers without nodejs_compat):
// bundled for a neutral platform, they reach no Node.js builtin module and
// name no Node.js global.
import assert from "node:assert/strict";
import { builtinModules } from "node:module";
import { describe, test } from "node:test";
import { build, type Plugin } from "esbuild";
import { neutralBuild, root } from "../helpers/neutral-bundle.js";

/** Records every import of a Node.js builtin, and leaves it out of the bundle. */
function nodeBuiltins(found: string[]): Plugin {
  const builtins = new Set(builtinModules);
  return {
    name: "node-builtins",
    setup(b) {
      b.onResolve({ filter: /.*/ }, ({ path, importer }) => {
        if (path.startsWith("node:") || builtins.has(path)) {
          found.push(`${path} (from ${importer.slice(root.length + 1)})`);
          return { path, external: true };
        }
        return undefined;
      });
    },
  };
}

async function bundle(entry: string): Promise<{ code: string; builtins: string[] }> {
  const builtins: string[] = [];
  const result = await build({
    ...neutralBuild(entry),
    // The peer dependencies users install next to connect-jwt.
    external: [
      "@connectrpc/connect",
      "@connectrpc/connect/*",
      "@bufbuild/protobuf",
      "@bufbuild/protobuf/*",
    ],
    plugins: [nodeBuiltins(builtins)],
  });
  const [output] = result.outputFiles;
  assert.ok(output !== undefined);
  return { code: output.text, builtins };
}

/** Node.js globals no fetch-API runtime has (Bun and Deno mimic some; Workers do not). */
const nodeGlobals =
  /\b(Buffer|process|require|module\.exports|__dirname|__filename|setImmediate|global)\b\s*[.([]/g;

describe("bundled for a neutral platform, nothing reaches Node.js", () => {
  for (const entry of ["src/index.ts", "src/client/index.ts"]) {
    test(entry, async () => {
      const { code, builtins } = await bundle(entry);
      assert.deepEqual(builtins, [], `${entry} imports Node.js builtins`);
      assert.doesNotMatch(code, /["']node:/, `${entry} names a node: module`);
      const globals = [...code.matchAll(nodeGlobals)].map((m) => m[0]);
      assert.deepEqual(globals, [], `${entry} uses Node.js globals`);
      // The bundle is not empty: the entry's exports are in it.
      assert.match(code, entry.includes("client") ? /bearerAuth/ : /createJwtAuth/);
    });
  }
});
