import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type Duration, parseDuration } from "../../src/core/duration.js";

describe("parseDuration", () => {
  test("leaves undefined undefined", () => {
    assert.equal(parseDuration(undefined, "opt"), undefined);
  });

  test("takes numbers as seconds", () => {
    assert.equal(parseDuration(0, "opt"), 0);
    assert.equal(parseDuration(30, "opt"), 30);
    assert.equal(parseDuration(1.5, "opt"), 1.5);
  });

  test("reads one unit: s, m, h, d", () => {
    const cases: [Duration, number][] = [
      ["0s", 0],
      ["30s", 30],
      ["15m", 900],
      ["1h", 3600],
      ["2d", 172_800],
      ["120s", 120],
    ];
    for (const [input, seconds] of cases) {
      assert.equal(parseDuration(input, "opt"), seconds, String(input));
    }
  });

  test("throws a TypeError naming the option for anything else", () => {
    const invalid: unknown[] = [
      -1,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      "",
      "abc",
      "30",
      "s",
      "-5s",
      "1.5h",
      "30 s",
      " 30s",
      "30s ",
      "30S",
      "1w",
      "1h30m",
      "30sec",
      null,
      true,
      {},
      [30],
    ];
    for (const input of invalid) {
      assert.throws(
        () => parseDuration(input as Duration, "createVerifier: maxTokenAge"),
        {
          name: "TypeError",
          message:
            'createVerifier: maxTokenAge must be seconds (a number >= 0) or a string like "30s", "15m", "1h"',
        },
        `accepted ${JSON.stringify(input)}`,
      );
    }
  });
});
