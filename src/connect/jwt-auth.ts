import type { DescMethod } from "@bufbuild/protobuf";
import {
  Code,
  type ConnectError,
  type ContextValues,
  createContextKey,
  type Interceptor,
} from "@connectrpc/connect";
import { readCredentials } from "../core/bearer-token.js";
import type { JwtClaims } from "../core/claims.js";
import { createDpopChecker } from "../core/dpop.js";
import { type AuthError, asAuthError, refusal } from "../core/errors.js";
import { assertKnownOptions, inOptionsOf, namesOf, type OptionNames } from "../core/options.js";
import { createScopesAndRoles } from "../core/scopes-and-roles.js";
import { checkTelemetry } from "../core/telemetry.js";
import { compileVerifier, verifierOptionNames } from "../core/verifier.js";
import { isCode } from "./code.js";
import { type DpopChallenge, toConnectError } from "./connect-error.js";
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
  dpop: true,
};

/** A call as the adapter decides it: what the gate and the interceptor both know of it. */
interface Call {
  readonly method: DescMethod;
  readonly header: Headers;
  /** The HTTP method and URL, which a DPoP proof names. */
  readonly httpMethod: string;
  readonly url: string;
  readonly protocol: Protocol;
  readonly values: ContextValues;
}

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
  const dpop =
    options.dpop === undefined
      ? undefined
      : createDpopChecker(options.dpop, verifier.clockTolerance);
  // Set by this JwtAuth's gate on the calls it admitted, so that its
  // interceptor does not verify them again. One key per JwtAuth: another
  // JwtAuth's gate decides nothing for this one.
  const admittedByGate = createContextKey(false, {
    description: "connect-jwt: admitted by the request gate",
  });

  /**
   * Decides a call: reads the token from the header, verifies it (and its
   * DPoP proof), asks the method's rule, and records the claims for the
   * handler. Throws the ConnectError that refuses the call.
   */
  async function authenticate(call: Call): Promise<void> {
    const { method, protocol } = call;
    const started = telemetry === undefined ? 0 : performance.now();
    const { name, rule } = rules.ruleFor(method);
    let claims: JwtClaims | undefined;
    try {
      claims = await verifyCredentials(call);
    } catch (err) {
      const error = asAuthError(err);
      // A public method called without a token goes on without claims; a bad token is refused.
      if (!(rule.public && error.code === "ERR_TOKEN_MISSING")) {
        measure(started, call, error);
        throw refuse(error, call, name, undefined, await nonceFor(error));
      }
    }
    if (claims !== undefined) {
      try {
        await rule.authorize(claims, {
          method: name,
          service: method.parent.typeName,
          headers: call.header,
        });
      } catch (err) {
        const error = asAuthError(err, "ERR_RULE_FAILED");
        measure(started, call, error, claims);
        throw refuse(error, call, name, claims);
      }
      notify(onAuthenticated, { method: name, protocol, subject: subjectOf(claims) });
    }
    measure(started, call, undefined, claims);
    call.values.set(claimsKey, claims);
    call.values.set(failureCodeKey, failureCode);
  }

  /**
   * The verified claims of the call's token: a Bearer token, or a DPoP-bound
   * token with its proof when DPoP is on. Throws the AuthError that refuses it.
   */
  async function verifyCredentials(call: Call): Promise<JwtClaims> {
    const { scheme, token } = readCredentials(
      call.header.get("authorization"),
      verifier.maxTokenSize,
    );
    if (dpop === undefined) {
      if (scheme !== "Bearer") {
        throw refusal("ERR_TOKEN_MISSING");
      }
      return await verifier.verify(token);
    }
    if (scheme === "Bearer" && dpop.required) {
      throw refusal("ERR_DPOP_BINDING_REQUIRED");
    }
    const claims = await verifier.verify(token);
    if (scheme === "DPoP") {
      const request = { proof: call.header.get("dpop"), method: call.httpMethod, url: call.url };
      await dpop.check(request, token, claims);
    } else if (isBound(claims)) {
      // RFC 9449, section 7.2: a bound token is worthless without its proof.
      throw refusal("ERR_DPOP_BINDING_REQUIRED");
    }
    return claims;
  }

  /** Tells the telemetry, if any, how a call was decided (a refusal's `error`) and how long it took. */
  function measure(started: number, call: Call, error: AuthError | undefined, claims?: JwtClaims) {
    telemetry?.authenticated({
      outcome: error === undefined ? "admitted" : error.unavailable ? "unavailable" : "refused",
      reason: error?.code,
      service: call.method.parent.typeName,
      method: call.method.name,
      protocol: call.protocol,
      seconds: (performance.now() - started) / 1000,
      subject: subjectOf(claims),
    });
  }

  /** The ConnectError a refused call ends with, after onDenied has heard of it. */
  function refuse(
    error: AuthError,
    call: Call,
    method: string,
    claims?: JwtClaims,
    nonce?: string,
  ): ConnectError {
    const { protocol } = call;
    notify(onDenied, { reason: error.code, error, method, protocol, subject: subjectOf(claims) });
    return toConnectError(error, failureCode, challengeOf(error, call.header, nonce));
  }

  /** How a refusal's challenge reads when DPoP is on; undefined when it is off. */
  function challengeOf(
    error: AuthError,
    header: Headers,
    nonce: string | undefined,
  ): DpopChallenge | undefined {
    if (dpop === undefined) {
      return undefined;
    }
    const scheme =
      dpop.required || isDpopCall(header) || error.code.startsWith("ERR_DPOP_") ? "DPoP" : "Bearer";
    return { scheme, algs: dpop.algorithms, nonce };
  }

  /** The nonce a refusal hands out: a fresh one when the proof lacked a current one. */
  async function nonceFor(error: AuthError): Promise<string | undefined> {
    return error.code === "ERR_DPOP_NONCE_REQUIRED" ? await dpop?.nonces?.current() : undefined;
  }

  /** Sends the current nonce to a DPoP caller whose call was admitted, for its next proof. */
  async function sendNonce(header: Headers, responseHeader: Headers) {
    if (dpop?.nonces !== undefined && isDpopCall(header)) {
      responseHeader.set("dpop-nonce", await dpop.nonces.current());
    }
  }

  return {
    verify: (token) => verifier.verify(token),
    warmUp: () => verifier.warmUp(),
    assertRules: (services, assertOptions) => rules.assertRules(services, assertOptions),
    async requestGate(ctx) {
      await authenticate({
        method: ctx.method,
        header: ctx.requestHeader,
        httpMethod: ctx.requestMethod,
        url: ctx.url,
        protocol: protocolOf(ctx.protocolName),
        values: ctx.values,
      });
      ctx.values.set(admittedByGate, true);
      await sendNonce(ctx.requestHeader, ctx.responseHeader);
    },
    interceptor: (next) => async (req) => {
      const call: Call = {
        method: req.method,
        header: req.header,
        httpMethod: req.requestMethod,
        url: req.url,
        protocol: protocolOf(req.header.get("content-type")),
        values: req.contextValues,
      };
      const decided = req.contextValues.get(admittedByGate);
      if (!decided) {
        await authenticate(call);
      }
      const exp = req.contextValues.get(claimsKey)?.exp;
      const res =
        !req.stream || !endStreamsAtExpiry || typeof exp !== "number"
          ? await next(req)
          : await endAtExpiry(next, req, (exp + verifier.clockTolerance) * 1000, () => {
              const error = refusal("ERR_TOKEN_EXPIRED");
              const claims = req.contextValues.get(claimsKey);
              return refuse(error, call, rules.ruleFor(req.method).name, claims);
            });
      if (!decided) {
        await sendNonce(req.header, res.header);
      }
      return res;
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

/** Whether a call came with `Authorization: DPoP`, even a malformed one (`DPoP` alone, a tab). */
function isDpopCall(header: Headers): boolean {
  return /^dpop(?:\s|$)/i.test(header.get("authorization") ?? "");
}

/** Whether a token is bound to a DPoP key (RFC 9449, section 6.1). */
function isBound(claims: JwtClaims): boolean {
  const cnf = claims.cnf;
  return typeof cnf === "object" && cnf !== null && "jkt" in cnf;
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
