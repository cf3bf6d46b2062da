import { type CelProgram, compileCel } from "./cel-rule.js";
import type { JwtClaims } from "./claims.js";
import { AuthError, refusal, safeCause } from "./errors.js";
import { claimAt, type ScopesAndRoles } from "./scopes-and-roles.js";

/** CallInfo is what a rule's `check` learns about the call. */
export interface CallInfo {
  /** `"pkg.Service/Method"`. */
  readonly method: string;
  /** `"pkg.Service"`. */
  readonly service: string;
  /** The request headers. */
  readonly headers: Headers;
}

/**
 * Rule says who may call a method. `{ public: true }` admits anyone (a token
 * that is sent must still be valid); any other rule needs a valid token, and
 * each field set adds a requirement. `{}` admits any valid token.
 *
 * @example
 * ```ts
 * const rules = {
 *   "notes.v1.NotesService/ListNotes": { scopes: ["notes:read"] },
 *   "notes.v1.NotesService/DeleteNote": { roles: ["admin"], claimEquals: { tenant: "acme" } },
 *   "notes.v1.NotesService/*": {},
 * };
 * ```
 */
export interface Rule {
  /** No token needed. A public rule sets no other field. */
  public?: boolean;
  /** Scopes the token must all carry. */
  scopes?: readonly string[];
  /** Scopes of which the token must carry at least one. */
  anyScopes?: readonly string[];
  /** Roles the token must all carry. */
  roles?: readonly string[];
  /** Roles of which the token must carry at least one. */
  anyRoles?: readonly string[];
  /** Claims (by dot path) that must equal these values exactly. */
  claimEquals?: Readonly<Record<string, string | number | boolean>>;
  /** Claims (by dot path) that must be arrays, or space-delimited strings, holding these values. */
  claimIncludes?: Readonly<Record<string, string | number>>;
  /** A predicate that must resolve to `true`; if it throws, the call is refused. */
  check?: (claims: JwtClaims, call: CallInfo) => boolean | Promise<boolean>;
  /**
   * A CEL expression that must be `true`. It sees `claims` (a map), the
   * normalized `scopes` and `roles` (lists of strings) and `method`. Compiled
   * once; an error while evaluating refuses the call.
   */
  expr?: string;
}

/** A rule checked and compiled for one method. */
export interface CompiledRule {
  /** No token needed (a token that is sent must still be valid). */
  readonly public: boolean;
  /** Resolves when the claims meet the rule; rejects with the AuthError that refuses the call. */
  authorize(claims: JwtClaims, call: CallInfo): Promise<void>;
}

const scopeToken = /^[\x21\x23-\x5B\x5D-\x7E]+$/; // RFC 6749 scope-token
const ruleFields = [
  "public",
  "scopes",
  "anyScopes",
  "roles",
  "anyRoles",
  "claimEquals",
  "claimIncludes",
  "check",
  "expr",
];
/**
 * compileRule checks a rule and compiles it, once. A mistake, a broken CEL
 * expression included, throws a `TypeError`; the caller says which method's
 * rule it is, and where that rule came from.
 */
export function compileRule(
  rule: Rule,
  scopesAndRolesOf: (claims: JwtClaims) => ScopesAndRoles,
): CompiledRule {
  if (typeof rule !== "object" || rule === null) {
    throw new TypeError(
      `a rule is an object such as { scopes: ["notes:read"] } or { public: true }`,
    );
  }
  for (const field of Object.keys(rule)) {
    if (!ruleFields.includes(field)) {
      throw new TypeError(`unknown rule field "${field}"; a rule has ${ruleFields.join(", ")}`);
    }
  }
  const { public: isPublic = false, check, expr } = rule;
  if (typeof isPublic !== "boolean") {
    throw new TypeError("public must be true or false");
  }
  const scopes = list(rule.scopes, "scopes", true);
  const anyScopes = list(rule.anyScopes, "anyScopes", true);
  const roles = list(rule.roles, "roles");
  const anyRoles = list(rule.anyRoles, "anyRoles");
  const equals = claimValues(rule.claimEquals, "claimEquals", ["string", "number", "boolean"]);
  const includes = claimValues(rule.claimIncludes, "claimIncludes", ["string", "number"]);
  if (check !== undefined && typeof check !== "function") {
    throw new TypeError("check must be a function (claims, call) => boolean");
  }
  const program: CelProgram | undefined =
    expr === undefined || expr === "" ? undefined : compileCel(expr);
  const constrained =
    [scopes, anyScopes, roles, anyRoles].some((l) => l.length > 0) ||
    equals.length + includes.length > 0;
  if (isPublic && (constrained || check !== undefined || program !== undefined)) {
    throw new TypeError("a public rule cannot also require scopes, roles, claims or checks");
  }
  const readsClaims = constrained || check !== undefined || program !== undefined;
  return {
    public: isPublic,
    async authorize(claims, call) {
      // `{}` and public rules read nothing: no scope and role sets are built
      // for their claims (nor kept alive beside them in the token cache).
      if (!readsClaims) {
        return;
      }
      const { scopes: have, roles: held } = scopesAndRolesOf(claims);
      if (!scopes.every((s) => have.has(s))) {
        throw new AuthError("ERR_INSUFFICIENT_SCOPE", { scope: scopes.join(" ") });
      }
      if (anyScopes.length > 0 && !anyScopes.some((s) => have.has(s))) {
        throw new AuthError("ERR_INSUFFICIENT_SCOPE", { scope: anyScopes.join(" ") });
      }
      const claimsOk =
        roles.every((r) => held.has(r)) &&
        (anyRoles.length === 0 || anyRoles.some((r) => held.has(r))) &&
        equals.every(([path, value]) => claimAt(claims, path) === value) &&
        includes.every(([path, value]) => contains(claimAt(claims, path), value));
      if (!claimsOk) {
        throw refusal("ERR_ACCESS_DENIED");
      }
      const verdict = program?.(claims, scopesAndRolesOf(claims), call.method) ?? "allow";
      if (verdict === "error") {
        // CEL's own message may quote claim values: only say that it failed.
        throw new AuthError("ERR_RULE_FAILED", { cause: new Error("CEL evaluation error") });
      }
      if (verdict === "deny") {
        throw refusal("ERR_ACCESS_DENIED");
      }
      if (check !== undefined) {
        await runCheck(check, claims, call);
      }
    },
  };
}

function claimValues(
  value: Readonly<Record<string, unknown>> | undefined,
  field: string,
  types: readonly string[],
): (readonly [readonly string[], string | number | boolean])[] {
  if (value === undefined) {
    return [];
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(
      `${field} must be an object of claim paths and values, e.g. { tenant: "acme" }`,
    );
  }
  return Object.entries(value).map(([path, expected]) => {
    const segments = path.split(".");
    if (segments.some((s) => s === "")) {
      throw new TypeError(
        `${field}: ${JSON.stringify(path)} is not a claim path like "org.tenant"`,
      );
    }
    if (
      !types.includes(typeof expected) ||
      (typeof expected === "number" && !Number.isFinite(expected))
    ) {
      throw new TypeError(
        `${field}: the value for ${JSON.stringify(path)} must be a ${types.join(" or ")}`,
      );
    }
    return [segments, expected as string | number | boolean] as const;
  });
}

async function runCheck(check: NonNullable<Rule["check"]>, claims: JwtClaims, call: CallInfo) {
  let allowed: boolean;
  try {
    allowed = (await check(claims, call)) === true;
  } catch (err) {
    throw new AuthError("ERR_RULE_FAILED", { cause: safeCause(err) });
  }
  if (!allowed) {
    throw refusal("ERR_ACCESS_DENIED");
  }
}

function list(
  value: readonly string[] | undefined,
  field: string,
  scope = false,
): readonly string[] {
  if (value === undefined) {
    return [];
  }
  if (
    !Array.isArray(value) ||
    value.some((s) => typeof s !== "string" || !(scope ? scopeToken.test(s) : s !== ""))
  ) {
    throw new TypeError(
      `${field} must be an array of ${scope ? "scope tokens (no spaces or quotes)" : "non-empty strings"}`,
    );
  }
  return value;
}

function contains(value: unknown, wanted: string | number | boolean): boolean {
  const entries = typeof value === "string" ? value.split(" ") : Array.isArray(value) ? value : [];
  return entries.includes(wanted);
}
