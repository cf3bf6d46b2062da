import { CelScalar, celEnv, isCelError, listType, mapType, parse, plan } from "@bufbuild/cel";
import type { JwtClaims } from "./claims.js";
import type { ScopesAndRoles } from "./scopes-and-roles.js";

/** What a compiled expression says of a call: allowed, refused, or failed while evaluating. */
export type CelVerdict = "allow" | "deny" | "error";

/** A CEL rule expression, compiled once. */
export type CelProgram = (claims: JwtClaims, sets: ScopesAndRoles, method: string) => CelVerdict;

const celVariables = ["claims", "scopes", "roles", "method"];
const env = celEnv({
  variables: {
    claims: mapType(CelScalar.STRING, CelScalar.DYN),
    scopes: listType(CelScalar.STRING),
    roles: listType(CelScalar.STRING),
    method: CelScalar.STRING,
  },
});

/**
 * compileCel parses a rule expression once, checks that it reads only the
 * variables rules offer (`claims`, `scopes`, `roles`, `method`), and returns
 * its program. A broken expression throws a `TypeError` naming `where`.
 */
export function compileCel(expr: string): CelProgram {
  const program = compileExpr(expr);
  return (claims, sets, method) => {
    const result = program({
      claims: celClaims(claims),
      scopes: [...sets.scopes],
      roles: [...sets.roles],
      method,
    });
    return result === true ? "allow" : isCelError(result) ? "error" : "deny";
  };
}

function compileExpr(expr: string) {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(expr);
  } catch (err) {
    throw new TypeError(
      `the CEL expression ${JSON.stringify(expr)} does not compile: ${String(err)}`,
    );
  }
  const unknown = freeNames(parsed.expr).filter((name) => !celVariables.includes(name));
  if (unknown.length > 0) {
    throw new TypeError(
      `the CEL expression ${JSON.stringify(expr)} uses ${unknown.join(", ")}; it can use ${celVariables.join(", ")}`,
    );
  }
  return plan(env, parsed);
}

type Expr = NonNullable<ReturnType<typeof parse>["expr"]>;

/** The identifiers an expression reads that no comprehension binds. */
function freeNames(expr: Expr | undefined, bound: ReadonlySet<string> = new Set()): string[] {
  if (expr === undefined) {
    return [];
  }
  const kind = expr.exprKind;
  switch (kind.case) {
    case "identExpr":
      return bound.has(kind.value.name) ? [] : [kind.value.name];
    case "selectExpr":
      return freeNames(kind.value.operand, bound);
    case "callExpr":
      return [kind.value.target, ...kind.value.args].flatMap((e) => freeNames(e, bound));
    case "listExpr":
      return kind.value.elements.flatMap((e) => freeNames(e, bound));
    case "structExpr":
      return kind.value.entries.flatMap((e) => [
        ...(e.keyKind.case === "mapKey" ? freeNames(e.keyKind.value, bound) : []),
        ...freeNames(e.value, bound),
      ]);
    case "comprehensionExpr": {
      const c = kind.value;
      const inner = new Set([...bound, c.iterVar, c.iterVar2, c.accuVar].filter((n) => n !== ""));
      return [
        ...freeNames(c.iterRange, bound),
        ...freeNames(c.accuInit, bound),
        ...[c.loopCondition, c.loopStep, c.result].flatMap((e) => freeNames(e, inner)),
      ];
    }
    default:
      return [];
  }
}

const celMemo = new WeakMap<JwtClaims, Map<string, never>>();

/** The claims as a CEL map, converted once per (frozen) claims object. */
function celClaims(claims: JwtClaims): Map<string, never> {
  let map = celMemo.get(claims);
  if (map === undefined) {
    map = toCel(claims) as Map<string, never>;
    celMemo.set(claims, map);
  }
  return map;
}

/** Turns claims into CEL values: objects become maps, numbers stay numbers (CEL doubles). */
function toCel(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(toCel);
  }
  if (typeof value === "object" && value !== null) {
    return new Map(Object.entries(value).map(([k, v]) => [k, toCel(v)]));
  }
  return value;
}
