import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { AuthError, type AuthErrorCode, parseBearerToken } from "../../src/index.js";
import {
  assertNoLeak,
  b64url,
  challengeFor,
  jwsOfLength,
  messageFor,
} from "../helpers/fixtures.js";

// Only the syntax matters here: a genuine compact JWS shape, signature bytes random.
const header = b64url(JSON.stringify({ alg: "ES256", typ: "JWT" }));
const payload = b64url(JSON.stringify({ sub: "secret-subject-123", exp: 1_900_000_000 }));
const jws = `${header}.${payload}.${randomBytes(64).toString("base64url")}`;

function refusal(value: string | null | undefined, maxTokenSize?: number): AuthError {
  try {
    const token = parseBearerToken(value, maxTokenSize);
    assert.fail(`accepted ${JSON.stringify(token.slice(0, 40))}`);
  } catch (err) {
    assert.ok(err instanceof AuthError, `expected an AuthError, got ${String(err)}`);
    return err;
  }
}

function assertRefusal(
  value: string | null | undefined,
  code: AuthErrorCode,
  maxTokenSize?: number,
): void {
  const err = refusal(value, maxTokenSize);
  assert.deepEqual(
    { code: err.code, message: err.message, challenge: err.challenge },
    { code, message: messageFor(code), challenge: challengeFor(code) },
  );
  if (typeof value === "string") {
    // Neither the header value nor any segment of the token in it.
    const segments = jws.split(".").filter((s) => value.includes(s));
    assertNoLeak(
      err,
      [value, ...segments].filter((s) => s.length >= 8),
    );
  }
}

describe("parseBearerToken", () => {
  describe("accepts", () => {
    const accepted: [string, string][] = [
      ["the canonical form", `Bearer ${jws}`],
      ["a lower-case scheme", `bearer ${jws}`],
      ["an upper-case scheme", `BEARER ${jws}`],
      ["a mixed-case scheme", `bEaReR ${jws}`],
      ["several spaces after the scheme", `Bearer    ${jws}`],
    ];
    for (const [name, value] of accepted) {
      test(name, () => {
        assert.equal(parseBearerToken(value), jws);
      });
    }
  });

  describe("refuses", () => {
    const refused: [string, string | null | undefined, AuthErrorCode][] = [
      ["null", null, "ERR_TOKEN_MISSING"],
      ["undefined", undefined, "ERR_TOKEN_MISSING"],
      ["an empty value", "", "ERR_TOKEN_MISSING"],
      ["the Basic scheme", "Basic dXNlcjpwYXNzd29yZA==", "ERR_TOKEN_MISSING"],
      ["another scheme with a JWS", `DPoP ${jws}`, "ERR_TOKEN_MISSING"],
      ["a scheme that only starts with Bearer", "Bearerxyz", "ERR_TOKEN_MISSING"],
      ["a longer scheme name", `BearerToken ${jws}`, "ERR_TOKEN_MISSING"],
      ["a scheme too short to be Bearer", "Bear", "ERR_TOKEN_MISSING"],
      ["leading whitespace before the scheme", ` Bearer ${jws}`, "ERR_TOKEN_MISSING"],
      ["Bearer alone", "Bearer", "ERR_AUTHORIZATION_MALFORMED"],
      ["Bearer and one space", "Bearer ", "ERR_AUTHORIZATION_MALFORMED"],
      ["Bearer and spaces only", "Bearer     ", "ERR_AUTHORIZATION_MALFORMED"],
      ["a tab after the scheme", `Bearer\t${jws}`, "ERR_AUTHORIZATION_MALFORMED"],
      [
        "a space inside the token",
        `Bearer ${header}.${payload} .sig`,
        "ERR_AUTHORIZATION_MALFORMED",
      ],
      [
        "a tab inside the token",
        `Bearer ${header}\t.${payload}.sig`,
        "ERR_AUTHORIZATION_MALFORMED",
      ],
      [
        "a newline inside the token",
        `Bearer ${header}.\n${payload}.sig`,
        "ERR_AUTHORIZATION_MALFORMED",
      ],
      ["a no-break space inside the token", `Bearer a.b\u00a0.c`, "ERR_AUTHORIZATION_MALFORMED"],
      ["a trailing space", `Bearer ${jws} `, "ERR_AUTHORIZATION_MALFORMED"],
      ["comma-joined values", "Bearer a.b.c, Bearer d.e.f", "ERR_AUTHORIZATION_MALFORMED"],
      ["comma-joined tokens", `Bearer ${jws},${jws}`, "ERR_AUTHORIZATION_MALFORMED"],
      ["two segments", `Bearer ${header}.${payload}`, "ERR_TOKEN_MALFORMED"],
      ["one segment", `Bearer ${header}`, "ERR_TOKEN_MALFORMED"],
      ["four segments", `Bearer ${jws}.${header}`, "ERR_TOKEN_MALFORMED"],
      ["five segments (a JWE)", "Bearer a.b.c.d.e", "ERR_TOKEN_MALFORMED"],
      ["an empty signature", `Bearer ${header}.${payload}.`, "ERR_TOKEN_MALFORMED"],
      ["an empty payload", `Bearer ${header}..sig`, "ERR_TOKEN_MALFORMED"],
      ["an empty header", `Bearer .${payload}.sig`, "ERR_TOKEN_MALFORMED"],
      ["dots only", "Bearer ..", "ERR_TOKEN_MALFORMED"],
      ["padding", `Bearer ${header}.${payload}.c2ln==`, "ERR_TOKEN_MALFORMED"],
      ["padding in the header", `Bearer ${header}=.${payload}.sig`, "ERR_TOKEN_MALFORMED"],
      ["a +", `Bearer ${header}.${payload}.a+b`, "ERR_TOKEN_MALFORMED"],
      ["a /", `Bearer ${header}.${payload}.a/b`, "ERR_TOKEN_MALFORMED"],
      ["a ~", `Bearer ${header}.${payload}.a~b`, "ERR_TOKEN_MALFORMED"],
      ["a non-ASCII letter", `Bearer ${header}.${payload}.sïg`, "ERR_TOKEN_MALFORMED"],
      ["an emoji", `Bearer ${header}.${payload}.sig\u{1f511}`, "ERR_TOKEN_MALFORMED"],
      ["a NUL character", `Bearer ${header}.${payload}.s\u0000g`, "ERR_TOKEN_MALFORMED"],
    ];
    for (const [name, value, code] of refused) {
      test(`${name} with ${code}`, () => {
        assertRefusal(value, code);
      });
    }
  });

  describe("canonical base64url in every segment", () => {
    // A segment's length modulo 4 says how many low bits its last character
    // leaves unused: 4 (length 2 mod 4) or 2 (length 3 mod 4); they must be zero.
    // One remainder is never base64: length 1 mod 4.
    const segments: [string, string, boolean][] = [
      ["length 2 mod 4, low bits zero", "QQ", true],
      ["length 2 mod 4, low bits set", "QR", false],
      ["length 3 mod 4, low bits zero", "QUE", true],
      ["length 3 mod 4, low bits set", "QUF", false],
      ["length 0 mod 4", "QUFB", true],
      ["length 1 mod 4", "QUFBQ", false],
    ];
    const places = ["header", "payload", "signature"] as const;
    for (const [name, segment, canonical] of segments) {
      places.forEach((place, at) => {
        const parts = [header, payload, "c2ln"];
        parts[at] = segment;
        const value = `Bearer ${parts.join(".")}`;
        test(`${canonical ? "accepts" : "refuses"} a ${place} of ${name}`, () => {
          if (canonical) {
            assert.equal(parseBearerToken(value), parts.join("."));
          } else {
            assertRefusal(value, "ERR_TOKEN_MALFORMED");
          }
        });
      });
    }
  });

  describe("size cap", () => {
    test("accepts a token exactly at the cap", () => {
      const token = jwsOfLength(100);
      assert.equal(parseBearerToken(`Bearer ${token}`, 100), token);
      assert.equal(parseBearerToken(`Bearer   ${token}`, 100), token);
    });

    test("refuses a token one character over the cap", () => {
      assertRefusal(`Bearer ${jwsOfLength(101)}`, "ERR_TOKEN_TOO_LARGE", 100);
    });

    test("defaults to 8192 characters", () => {
      const token = jwsOfLength(8192);
      assert.equal(parseBearerToken(`Bearer ${token}`), token);
      assertRefusal(`Bearer ${jwsOfLength(8193)}`, "ERR_TOKEN_TOO_LARGE");
    });

    test("refuses an oversized token before checking its syntax", () => {
      assertRefusal(`Bearer ${"%".repeat(101)}`, "ERR_TOKEN_TOO_LARGE", 100);
    });

    test("refuses a 1 MiB header", () => {
      const started = performance.now();
      assertRefusal(`Bearer ${jwsOfLength(1024 * 1024)}`, "ERR_TOKEN_TOO_LARGE");
      assertRefusal(`Bearer ${"x".repeat(1024 * 1024)}`, "ERR_TOKEN_TOO_LARGE");
      assertRefusal(`bearer ${"a b,".repeat(256 * 1024)}`, "ERR_TOKEN_TOO_LARGE");
      // Refused by length, not by scanning a megabyte with regular expressions.
      assert.ok(performance.now() - started < 1000);
    });

    test("a 1 MiB header of another scheme is still a missing token", () => {
      assertRefusal(`Basic ${"x".repeat(1024 * 1024)}`, "ERR_TOKEN_MISSING");
    });
  });

  describe("messages", () => {
    test("are the fixed strings and never contain the token", () => {
      const cases: [string, AuthErrorCode][] = [
        [`Basic ${jws}`, "ERR_TOKEN_MISSING"],
        [`Bearer ${jws}, Bearer ${jws}`, "ERR_AUTHORIZATION_MALFORMED"],
        [`Bearer ${jws}.${payload}`, "ERR_TOKEN_MALFORMED"],
        [`Bearer ${jws}${"A".repeat(8192)}`, "ERR_TOKEN_TOO_LARGE"],
      ];
      for (const [value, code] of cases) {
        const err = refusal(value);
        assert.equal(err.code, code);
        assert.equal(err.message, messageFor(code));
        assert.equal(err.cause, undefined);
        assertNoLeak(err, [jws, header, payload, "secret-subject-123"]);
      }
    });
  });

  // The TSDoc of parseBearerToken promises ERR_AUTHORIZATION_MALFORMED for
  // "other whitespace" after the scheme (errors.ts: "stray whitespace"); only a
  // tab gets it today, the rest are reported as no credentials at all.
  test("other whitespace after the scheme is a malformed header, not a missing token", () => {
    const cases: [string, string][] = [
      ["a no-break space (obs-text, legal in an HTTP field value)", "\u00a0"],
      ["a vertical tab", "\u000b"],
      ["a form feed", "\u000c"],
    ];
    for (const [name, ws] of cases) {
      const err = refusal(`Bearer${ws}${jws}`);
      assert.equal(err.code, "ERR_AUTHORIZATION_MALFORMED", name);
    }
  });
});
