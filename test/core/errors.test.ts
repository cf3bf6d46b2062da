// AuthError: a fixed message per code; refusals without detail are one frozen
// error per code.
import * as assert from "node:assert/strict";
import { describe, test } from "node:test";
import { refusal } from "../../src/core/errors.js";
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

describe("refusal", () => {
  test("is one frozen AuthError per code, whose stack names no call", () => {
    const expired = refusal("ERR_TOKEN_EXPIRED");
    assert.ok(expired instanceof AuthError);
    assert.equal(expired.code, "ERR_TOKEN_EXPIRED");
    assert.equal(expired.message, "token expired");
    assert.equal(refusal("ERR_TOKEN_EXPIRED"), expired);
    assert.notEqual(refusal("ERR_TOKEN_MALFORMED"), expired);
    assert.ok(Object.isFrozen(expired));
    assert.equal(expired.stack, "AuthError: token expired");
  });
});
