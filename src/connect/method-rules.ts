import { type DescMethod, type DescService, getOption, hasOption } from "@bufbuild/protobuf";
import {
  type AccessRule,
  default_rule,
  rule as methodRule,
} from "../../gen/connectjwt/v1/auth_pb.js";
import type { ClaimSets } from "../core/claim-sets.js";
import type { JwtClaims } from "../core/claims.js";
import { AuthError } from "../core/errors.js";
import { type CompiledRule, compileRule, type Rule } from "../core/rules.js";

/** Where a method's rule came from, in order of precedence. */
export type RuleSource = "code" | "method option" | "service option" | "default";

/** RuleOptions declare per-method access rules in code. */
export interface RuleOptions {
  /**
   * Rules by `"pkg.Service/Method"` or `"pkg.Service/*"`. A rule in code wins
   * over the method's `(connectjwt.v1.rule)` option, which wins over the
   * service's `(connectjwt.v1.default_rule)`, which wins over `defaultRule`.
   */
  rules?: Readonly<Record<string, Rule>>;
  /** The rule of methods that have none. Default `{}`: any valid token. Never public by default. */
  defaultRule?: Rule;
  /** A shortcut: `publicMethods: ["pkg.Service/Ping"]` is `rules: { "pkg.Service/Ping": { public: true } }`. */
  publicMethods?: readonly string[];
}

/** Options of {@link JwtAuth.assertRules}. */
export interface AssertRulesOptions {
  /** Throw for every method whose rule is only the `defaultRule`. */
  requireExplicit?: boolean;
}

/** A method's compiled rule, and its name, `"pkg.Service/Method"`, made once. */
export interface MethodRule {
  readonly rule: CompiledRule;
  readonly name: string;
}

/** The compiled rules of a server, looked up per method. */
export interface RuleBook {
  /**
   * The method's compiled rule and its name; a rule that does not compile
   * yields one that refuses.
   */
  ruleFor(method: DescMethod): MethodRule;
  /** Compiles every rule of these services now and throws a TypeError listing each problem. */
  assertRules(services: readonly DescService[], options?: AssertRulesOptions): void;
}

const methodName =
  /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\/([A-Za-z_][A-Za-z0-9_]*|\*)$/;

/**
 * createRuleBook checks the rules given in code at construction, and reads a
 * method's proto options the first time the method is called, compiling each
 * rule once.
 */
export function createRuleBook(
  options: RuleOptions,
  sets: (claims: JwtClaims) => ClaimSets,
  where: string,
): RuleBook {
  const code = new Map<string, Rule>();
  for (const [name, rule] of Object.entries(options.rules ?? {})) {
    code.set(checkName(name, `${where}: rules`), rule);
  }
  const publicMethods = options.publicMethods ?? [];
  if (!Array.isArray(publicMethods)) {
    throw new TypeError(
      `${where}: publicMethods must be an array like ["pkg.Service/Method", "pkg.Service/*"]`,
    );
  }
  for (const name of publicMethods) {
    if (Object.hasOwn(options.rules ?? {}, checkName(name, `${where}: publicMethods`))) {
      throw new TypeError(`${where}: ${name} is in both publicMethods and rules; keep one`);
    }
    code.set(name, { public: true });
  }
  // Rules in code are compiled now, so that their mistakes surface at construction.
  const compiledCode = new Map(
    [...code].map(([name, rule]) => [name, compileRule(rule, sets, `${where}: rules["${name}"]`)]),
  );
  const fallback = compileRule(options.defaultRule ?? {}, sets, `${where}: defaultRule`);
  const memo = new WeakMap<DescMethod, MethodRule & { source: RuleSource }>();

  /** The rule for `method`, whose full name is `label`, and where it came from. */
  function resolve(method: DescMethod, label: string): { rule: CompiledRule; source: RuleSource } {
    const inCode = compiledCode.get(label) ?? compiledCode.get(`${method.parent.typeName}/*`);
    if (inCode !== undefined) {
      return { rule: inCode, source: "code" };
    }
    if (hasOption(method, methodRule)) {
      return {
        rule: compileRule(fromProto(getOption(method, methodRule)), sets, label),
        source: "method option",
      };
    }
    if (hasOption(method.parent, default_rule)) {
      return {
        rule: compileRule(fromProto(getOption(method.parent, default_rule)), sets, label),
        source: "service option",
      };
    }
    return { rule: fallback, source: "default" };
  }

  function lookup(method: DescMethod) {
    let entry = memo.get(method);
    if (entry === undefined) {
      const name = fullName(method);
      try {
        entry = { ...resolve(method, name), name };
      } catch (err) {
        // A rule that does not compile refuses every call, and says why once to onDenied.
        const failure = new AuthError("ERR_RULE_FAILED", { cause: err });
        entry = { rule: { public: false, decide: () => failure }, source: "method option", name };
      }
      memo.set(method, entry);
    }
    return entry;
  }

  return {
    ruleFor: lookup,
    assertRules(services, { requireExplicit = false } = {}) {
      const problems: string[] = [];
      for (const service of services) {
        // A rule in code for a method the service does not have guards nothing: likely a typo.
        for (const name of code.keys()) {
          const [serviceName, method] = name.split("/");
          if (
            serviceName === service.typeName &&
            method !== "*" &&
            !service.methods.some((m) => m.name === method)
          ) {
            problems.push(`rules["${name}"] names no method of ${service.typeName}`);
          }
        }
        for (const method of service.methods) {
          const name = fullName(method);
          try {
            const { source } = resolve(method, name);
            if (requireExplicit && source === "default") {
              problems.push(`${name} has no explicit rule`);
            }
          } catch (err) {
            problems.push(err instanceof Error ? err.message : String(err));
          }
        }
      }
      if (problems.length > 0) {
        throw new TypeError(
          `assertRules: ${problems.length} problem(s):\n- ${problems.join("\n- ")}`,
        );
      }
    },
  };
}

function checkName(name: unknown, where: string): string {
  if (typeof name !== "string" || !methodName.test(name)) {
    throw new TypeError(
      `${where}: ${JSON.stringify(name)} is not "pkg.Service/Method" or "pkg.Service/*" (no leading slash)`,
    );
  }
  return name;
}

function fromProto(rule: AccessRule): Rule {
  const { public: isPublic, scopes, anyScopes, roles, expr } = rule;
  return { public: isPublic, scopes, anyScopes, roles, expr };
}

/** A method's name as rules and hooks give it: `"pkg.Service/Method"`. */
function fullName(method: DescMethod): string {
  return `${method.parent.typeName}/${method.name}`;
}
