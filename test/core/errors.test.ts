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

  test("carries no stack frames, and leaves Error.stackTraceLimit as it was", () => {
    const limit = Error.stackTraceLimit;
    const err = new AuthError("ERR_TOKEN_MISSING");
    assert.equal(err.stack, "AuthError: missing bearer token");
    assert.equal(Error.stackTraceLimit, limit);
    // The control: an ordinary error made here has frames.
    assert.match(new Error("x").stack ?? "", /\n\s+at /);
  });

  test("where Error.stackTraceLimit cannot be changed, it is still made", (t) => {
    const descriptor = Object.getOwnPropertyDescriptor(Error, "stackTraceLimit");
    Object.defineProperty(Error, "stackTraceLimit", {
      value: 10,
      writable: false,
      configurable: true,
    });
    t.after(() => {
      if (descriptor !== undefined) {
        Object.defineProperty(Error, "stackTraceLimit", descriptor);
      }
    });
    const err = new AuthError("ERR_TOKEN_EXPIRED");
    assert.equal(err.code, "ERR_TOKEN_EXPIRED");
    assert.equal(err.message, "token expired");
    assert.equal(Error.stackTraceLimit, 10);
  });
});
