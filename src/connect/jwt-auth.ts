import type { DescMethod } from "@bufbuild/protobuf";
import { Code, type ContextValues, createContextKey, type Interceptor } from "@connectrpc/connect";
import { readBearerToken } from "../core/bearer-token.js";
import type { JwtClaims } from "../core/claims.js";
import { type AuthError, asAuthError, refusal } from "../core/errors.js";
import { assertKnownOptions, inOptionsOf, namesOf, type OptionNames } from "../core/options.js";
import { createScopesAndRoles } from "../core/scopes-and-roles.js";
import { checkTelemetry } from "../core/telemetry.js";
import { compileVerifier, verifierOptionNames } from "../core/verifier.js";
import { isCode } from "./code.js";
import { toConnectError } from "./connect-error.js";
import { claimsKey, failureCodeKey } from "./context.js";
import type { JwtAuth, JwtAuthOptions, Protocol } from "./jwt-auth-options.js";
import { createRuleBook } from "./method-rules.js";
import { endAtExpiry } from "./stream-expiry.js";

/** Every option of {@link createJwtAuth}, for the check of unknown options. */
const jwtAuthOptionNames: OptionNames<JwtAuthOptions> = {
  ...verifierOptionNames,
  rules: true,
  defaultRule: true,
  publicMethods: true,
  scopeClaims: true,
  roleClaims: true,
  failureCode: true,
  endStreamsAtExpiry: true,
  onDenied: true,
  onAuthenticated: true,
};

/**
 * createJwtAuth validates the options eagerly (a mistake throws a `TypeError`
 * that says how to fix it) and returns the interceptor and request gate that
 * authenticate calls with one shared verifier.
 *
 * @example
 * ```ts
 * const auth = createJwtAuth({
 *   publicKey: process.env.JWT_PUBLIC_KEY,
 *   algorithms: ["ES256"],
 *   issuer: "https://auth.example.com/",
 *   audience: "notes-api",
 *   publicMethods: ["demo.v1.DemoService/Ping"],
 * });
 * const handler = connectNodeAdapter({
 *   routes,
 *   interceptors: [auth.interceptor],
 *   requestGate: auth.requestGate,
 * });
 * ```
 */
export function createJwtAuth(options: JwtAuthOptions): JwtAuth {
  return inOptionsOf("createJwtAuth", () => compileJwtAuth(options));
}

function compileJwtAuth(options: JwtAuthOptions): JwtAuth {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("pass an options object with a key source, e.g. { jwks, algorithms }");
  }
  assertKnownOptions(options, namesOf(jwtAuthOptionNames));
  const verifier = compileVerifier(options);
  const audiences = [options.audience, ...(options.issuers ?? []).map((i) => i.audience)].flat();
  const scopesAndRolesOf = createScopesAndRoles(
    options,
    audiences.filter((a) => typeof a === "string"),
  );
  const rules = createRuleBook(options, scopesAndRolesOf);
  const failureCode = options.failureCode ?? Code.PermissionDenied;
  if (!isCode(failureCode)) {
    throw new TypeError("failureCode must be a Code, e.g. Code.Unauthenticated");
  }
  const { onDenied, onAuthenticated, endStreamsAtExpiry = true } = options;
  if (typeof endStreamsAtExpiry !== "boolean") {
    throw new TypeError("endStreamsAtExpiry must be true or false");
  }
  for (const [name, hook] of Object.entries({ onDenied, onAuthenticated })) {
    if (hook !== undefined && typeof hook !== "function") {
      throw new TypeError(`${name} must be a function`);
    }
  }
  const telemetry = checkTelemetry(options.telemetry);
  // Set by this JwtAuth's gate on the calls it admitted, so that its
  // interceptor does not verify them again. One key per JwtAuth: another
  // JwtAuth's gate decides nothing for this one.
  const admittedByGate = createContextKey(false, {
    description: "connect-jwt: admitted by the request gate",
  });

  /**
   * Decides a call: reads the token from the header, verifies it, asks the
   * method's rule, and records the claims for the handler. Throws the
   * ConnectError that refuses the call.
   */
  async function authenticate(
    method: DescMethod,
    header: Headers,
    protocol: Protocol,
    values: ContextValues,
  ): Promise<void> {
    const started = telemetry === undefined ? 0 : performance.now();
    const { name, rule } = rules.ruleFor(method);
    let claims: JwtClaims | undefined;
    try {
      claims = await verifier.verify(
        readBearerToken(header.get("authorization"), verifier.maxTokenSize),
      );
    } catch (err) {
      const error = asAuthError(err);
      // A public method called without a token goes on without claims; a bad token is refused.
      if (!(rule.public && error.code === "ERR_TOKEN_MISSING")) {
        measure(started, method, protocol, error);
        throw refuse(error, name, protocol);
      }
    }
    if (claims !== undefined) {
      try {
        await rule.authorize(claims, {
          method: name,
          service: method.parent.typeName,
          headers: header,
        });
      } catch (err) {
        const error = asAuthError(err, "ERR_RULE_FAILED");
        measure(started, method, protocol, error, claims);
        throw refuse(error, name, protocol, claims);
      }
      notify(onAuthenticated, { method: name, protocol, subject: subjectOf(claims) });
    }
    measure(started, method, protocol, undefined, claims);
    values.set(claimsKey, claims);
    values.set(failureCodeKey, failureCode);
  }

  /** Tells the telemetry, if any, how a call was decided (a refusal's `error`) and how long it took. */
  function measure(
    started: number,
    method: DescMethod,
    protocol: Protocol,
    error: AuthError | undefined,
    claims?: JwtClaims,
  ) {
    telemetry?.authenticated({
      outcome: error === undefined ? "admitted" : error.unavailable ? "unavailable" : "refused",
      reason: error?.code,
      service: method.parent.typeName,
      method: method.name,
      protocol,
      seconds: (performance.now() - started) / 1000,
      subject: subjectOf(claims),
    });
  }

  /** The ConnectError a refused call ends with, after onDenied has heard of it. */
  function refuse(error: AuthError, method: string, protocol: Protocol, claims?: JwtClaims) {
    notify(onDenied, { reason: error.code, error, method, protocol, subject: subjectOf(claims) });
    return toConnectError(error, failureCode);
  }

  return {
    verify: (token) => verifier.verify(token),
    warmUp: () => verifier.warmUp(),
    assertRules: (services, assertOptions) => rules.assertRules(services, assertOptions),
    async requestGate(ctx) {
      await authenticate(ctx.method, ctx.requestHeader, protocolOf(ctx.protocolName), ctx.values);
      ctx.values.set(admittedByGate, true);
    },
    interceptor: (next) => async (req) => {
      const protocol = protocolOf(req.header.get("content-type"));
      if (!req.contextValues.get(admittedByGate)) {
        await authenticate(req.method, req.header, protocol, req.contextValues);
      }
      const exp = req.contextValues.get(claimsKey)?.exp;
      if (!req.stream || !endStreamsAtExpiry || typeof exp !== "number") {
        return await next(req);
      }
      return await endAtExpiry(next, req, (exp + verifier.clockTolerance) * 1000, () => {
        const error = refusal("ERR_TOKEN_EXPIRED");
        const claims = req.contextValues.get(claimsKey);
        return refuse(error, rules.ruleFor(req.method).name, protocol, claims);
      });
    },
  };
}

/**
 * jwtInterceptor is the one-line form of {@link createJwtAuth}: it returns the
 * interceptor alone, which works on every Connect 2.x server.
 *
 * @example
 * ```ts
 * connectNodeAdapter({ routes, interceptors: [jwtInterceptor({ jwks, algorithms: ["ES256"] })] });
 * ```
 */
export function jwtInterceptor(options: JwtAuthOptions): Interceptor {
  return createJwtAuth(options).interceptor;
}

function subjectOf(claims: JwtClaims | undefined): string | undefined {
  return typeof claims?.sub === "string" ? claims.sub : undefined;
}

function protocolOf(nameOrContentType: string | null): Protocol {
  const value = nameOrContentType ?? "";
  if (value.includes("grpc-web")) {
    return "grpc-web";
  }
  return value.includes("grpc") ? "grpc" : "connect";
}

function notify<E>(hook: ((event: E) => void) | undefined, event: E) {
  if (hook === undefined) {
    return;
  }
  try {
    const result: unknown = hook(event);
    if (result instanceof Promise) {
      result.catch(() => {});
    }
  } catch {
    // A failing hook must not change the decision or crash the server.
  }
}
