import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  assertKnownOptions,
  definedOptions,
  inOptionsOf,
  namesOf,
  type OptionNames,
} from "../../src/core/options.js";

interface Example {
  audience?: string;
  publicMethods?: string[];
  maxTokenSize?: number;
}

const names = namesOf<Example>({ audience: true, publicMethods: true, maxTokenSize: true });

describe("OptionNames", () => {
  test("the compiler refuses a list that forgets an option, or names one the type lacks", () => {
    // @ts-expect-error: maxTokenSize is missing
    const forgotten: OptionNames<Example> = { audience: true, publicMethods: true };
    // @ts-expect-error: audiences is not an option of Example
    const stray: OptionNames<Example> = { ...forgotten, maxTokenSize: true, audiences: true };
    assert.deepEqual(Object.keys(stray).sort(), [
      "audience",
      "audiences",
      "maxTokenSize",
      "publicMethods",
    ]);
    assert.deepEqual([...names].sort(), ["audience", "maxTokenSize", "publicMethods"]);
  });
});

describe("assertKnownOptions", () => {
  test("known options pass", () => {
    assert.doesNotThrow(() => assertKnownOptions({ audience: "api", maxTokenSize: 100 }, names));
  });

  const slips: [given: string, closest: string][] = [
    ["publicMethod", "publicMethods"],
    ["audiance", "audience"],
    ["Audience", "audience"],
    ["maxtokensize", "maxTokenSize"],
  ];
  for (const [given, closest] of slips) {
    test(`${given}: named with ${closest}`, () => {
      assert.throws(() => assertKnownOptions({ [given]: 1 }, names), {
        name: "TypeError",
        message: `unknown option \`${given}\`; did you mean \`${closest}\`?`,
      });
    });
  }

  test("a name far from every option is named alone", () => {
    assert.throws(() => assertKnownOptions({ frobnicate: true }, names), {
      name: "TypeError",
      message: "unknown option `frobnicate`",
    });
  });
});

describe("definedOptions", () => {
  test("keeps the listed options that have a value other than undefined", () => {
    const given: Example = { audience: "api", publicMethods: undefined as unknown as string[] };
    assert.deepEqual(definedOptions(given, names), { audience: "api" });
  });
});

describe("inOptionsOf", () => {
  test("puts the context before a TypeError's message, once per level", () => {
    assert.throws(
      () =>
        inOptionsOf("createJwtAuth", () =>
          inOptionsOf("issuers[1]", () => {
            throw new TypeError("secret is empty");
          }),
        ),
      { name: "TypeError", message: "createJwtAuth: issuers[1]: secret is empty" },
    );
  });

  test("returns what the check returns, and lets other errors through as they are", () => {
    assert.equal(
      inOptionsOf("x", () => 42),
      42,
    );
    const other = new RangeError("not an option mistake");
    assert.throws(
      () =>
        inOptionsOf("x", () => {
          throw other;
        }),
      (err: unknown) => err === other,
    );
  });
});
