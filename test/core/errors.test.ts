// AuthError: a fixed message per code, and no stack trace (a refusal is an
// outcome, and capturing a stack was most of what a refusal cost).
import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AuthError } from "../../src/index.js";

describe("AuthError", () => {
  test("is an Error named AuthError, with a fixed message, code and cause", () => {
    const cause = new Error("jose said something about secret-claim-value");
    const err = new AuthError("ERR_SIGNATURE_INVALID", { cause });
    assert.ok(err instanceof Error);
    assert.ok(err instanceof AuthError);
    assert.equal(err.name, "AuthError");
    assert.equal(err.message, "invalid token");
    assert.equal(err.code, "ERR_SIGNATURE_INVALID");
    assert.equal(err.cause, cause);
    assert.equal(String(err), "AuthError: invalid token");
    assert.deepEqual(Object.keys(err).sort(), ["code", "scope"]);
  });
});
