import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cp, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";

const root = join(import.meta.dirname, "..", "..");
const buf = join(root, "node_modules", ".bin", "buf");

async function files(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

test("gen/ is what `buf generate` makes of proto/ (run `npm run generate` if this fails)", async () => {
  const work = await mkdtemp(join(tmpdir(), "connect-jwt-gen-"));
  try {
    for (const name of ["buf.yaml", "buf.gen.yaml", "proto"]) {
      await cp(join(root, name), join(work, name), { recursive: true });
    }
    const env = {
      ...process.env,
      PATH: `${join(root, "node_modules", ".bin")}:${process.env.PATH}`,
    };
    await promisify(execFile)(buf, ["generate"], { cwd: work, env, timeout: 60_000 });
    const fresh = join(work, "gen");
    const committed = join(root, "gen");
    assert.deepEqual(await files(committed), await files(fresh));
    for (const file of await files(fresh)) {
      assert.equal(
        await readFile(join(committed, file), "utf8"),
        await readFile(join(fresh, file), "utf8"),
        `${file} is stale`,
      );
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});
