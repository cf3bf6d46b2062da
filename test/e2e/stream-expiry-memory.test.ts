// Ending streams at expiry costs the same for a long stream as for a short
// one: a server that has echoed many messages on one open bidi stream holds
// no more memory with expiry on than with `endStreamsAtExpiry: false`.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const messages = 100_000;
const mib = 1024 * 1024;
const script = fileURLToPath(new URL("../helpers/long-stream.ts", import.meta.url));

/** The heap growth of a server over one long stream, measured by test/helpers/long-stream.ts. */
async function heapGrowth(expiry: "on" | "off"): Promise<{ growth: number; seconds: number }> {
  const args = ["--expose-gc", "--import", "tsx", script, String(messages), expiry];
  const { stdout } = await promisify(execFile)(process.execPath, args);
  return JSON.parse(stdout);
}

describe("one long bidi stream", () => {
  test(`costs no memory per message with expiry on (${messages} messages)`, async (t) => {
    const off = await heapGrowth("off");
    const on = await heapGrowth("on");
    const figures =
      `heap growth over ${messages} messages on one open stream: ` +
      `${(on.growth / mib).toFixed(2)} MiB with expiry (${on.seconds.toFixed(1)} s), ` +
      `${(off.growth / mib).toFixed(2)} MiB without (${off.seconds.toFixed(1)} s)`;
    t.diagnostic(figures);
    assert.ok(on.growth - off.growth < 4 * mib, figures);
  });
});
