import { type DescMethod, type DescService, getOption, hasOption } from "@bufbuild/protobuf";
import {
  type AccessRule,
  default_rule,
  rule as methodRule,
} from "../../gen/connectjwt/v1/auth_pb.js";
import type { JwtClaims } from "../core/claims.js";
import { AuthError } from "../core/errors.js";
import { inOptionsOf } from "../core/options.js";
import { type CompiledRule, compileRule, type Rule } from "../core/rules.js";
import type { ScopesAndRoles } from "../core/scopes-and-roles.js";

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

/** A method's name, `"pkg.Service/Method"`, its compiled rule, and where the rule came from. */
export interface MethodRule {
  readonly name: string;
  readonly rule: CompiledRule;
  readonly source: RuleSource;
}

/** The compiled rules of a server, looked up per method. */
export interface RuleBook {
  /** The method's rule, compiled once; a rule that does not compile refuses every call. */
  ruleFor(method: DescMethod): MethodRule;
  /** Compiles every rule of these services now and throws a TypeError listing each problem. */
  assertRules(services: readonly DescService[], options?: AssertRulesOptions): void;
}

/** A rule as written, before it is compiled: what it says, where, and how messages name it. */
interface RuleDefinition {
  readonly rule: Rule;
  readonly source: RuleSource;
  /** How a message names the rule: `rules["pkg.Service/*"]`, or `pkg.Service/Method (method option)`. */
  readonly label: string;
}

const methodName =
  /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\/([A-Za-z_][A-Za-z0-9_]*|\*)$/;

/**
 * createRuleBook checks the rules given in code at construction, and reads a
 * method's proto options the first time the method is called, compiling each
 * rule once. A rule comes from one of four sources, in this order: code
 * (`rules`, `publicMethods`), the method's option, its service's option, and
 * `defaultRule`.
 */
export function createRuleBook(
  options: RuleOptions,
  scopesAndRolesOf: (claims: JwtClaims) => ScopesAndRoles,
): RuleBook {
  const inCode = new Map<string, RuleDefinition>();
  for (const [name, rule] of Object.entries(options.rules ?? {})) {
    inCode.set(checkName(name, "rules"), { rule, source: "code", label: `rules["${name}"]` });
  }
  const publicMethods = options.publicMethods ?? [];
  if (!Array.isArray(publicMethods)) {
    throw new TypeError(
      'publicMethods must be an array like ["pkg.Service/Method", "pkg.Service/*"]',
    );
  }
  for (const name of publicMethods) {
    if (Object.hasOwn(options.rules ?? {}, checkName(name, "publicMethods"))) {
      throw new TypeError(`${name} is in both publicMethods and rules; keep one`);
    }
    inCode.set(name, { rule: { public: true }, source: "code", label: `publicMethods "${name}"` });
  }
  const fallback: RuleDefinition = {
    rule: options.defaultRule ?? {},
    source: "default",
    label: "defaultRule",
  };
  // Rules in code are compiled now, so that their mistakes surface at construction.
  const compiled = new Map<RuleDefinition, CompiledRule>();
  for (const definition of [...inCode.values(), fallback]) {
    compiled.set(definition, compile(definition));
  }
  const byMethod = new WeakMap<DescMethod, MethodRule>();

  function compile(definition: RuleDefinition): CompiledRule {
    let rule = compiled.get(definition);
    if (rule === undefined) {
      rule = inOptionsOf(definition.label, () => compileRule(definition.rule, scopesAndRolesOf));
      compiled.set(definition, rule);
    }
    return rule;
  }

  /** The rule that applies to `method`, as written, from the first source that has one. */
  function definitionFor(method: DescMethod, name: string): RuleDefinition {
    const fromCode = inCode.get(name) ?? inCode.get(`${method.parent.typeName}/*`);
    if (fromCode !== undefined) {
      return fromCode;
    }
    if (hasOption(method, methodRule)) {
      const rule = fromProto(getOption(method, methodRule));
      return { rule, source: "method option", label: `${name} (method option)` };
    }
    if (hasOption(method.parent, default_rule)) {
      const rule = fromProto(getOption(method.parent, default_rule));
      return { rule, source: "service option", label: `${name} (service option)` };
    }
    return fallback;
  }

  return {
    ruleFor(method) {
      let found = byMethod.get(method);
      if (found === undefined) {
        const name = fullName(method);
        const definition = definitionFor(method, name);
        let rule: CompiledRule;
        try {
          rule = compile(definition);
        } catch (err) {
          // A rule that does not compile refuses every call, and says why to onDenied.
          rule = refusingRule(new AuthError("ERR_RULE_FAILED", { cause: err }));
        }
        found = { name, rule, source: definition.source };
        byMethod.set(method, found);
      }
      return found;
    },
    assertRules(services, { requireExplicit = false } = {}) {
      const problems: string[] = [];
      for (const service of services) {
        // A rule in code for a method the service does not have guards nothing: likely a typo.
        for (const name of inCode.keys()) {
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
          const definition = definitionFor(method, name);
          try {
            compile(definition);
          } catch (err) {
            problems.push(err instanceof Error ? err.message : String(err));
          }
          if (requireExplicit && definition.source === "default") {
            problems.push(`${name} has no explicit rule`);
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

function refusingRule(failure: AuthError): CompiledRule {
  return {
    public: false,
    authorize: () => Promise.reject(failure),
  };
}

function checkName(name: unknown, option: string): string {
  if (typeof name !== "string" || !methodName.test(name)) {
    throw new TypeError(
      `${option}: ${JSON.stringify(name)} is not "pkg.Service/Method" or "pkg.Service/*" (no leading slash)`,
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
