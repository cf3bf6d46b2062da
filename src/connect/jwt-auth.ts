import type { DescMethod } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextKey,
  type Interceptor,
  type StreamRequest,
  type UnaryRequest,
} from "@connectrpc/connect";
import { readBearerToken } from "../core/bearer-token.js";
import { createClaimSets } from "../core/claim-sets.js";
import type { JwtClaims } from "../core/claims.js";
import { AuthError, safeCause } from "../core/errors.js";
import { assertKnownOptions, namesOf, type OptionNames } from "../core/option-names.js";
import { buildVerifier, verifierOptions } from "../core/verifier.js";
import { isCode } from "./code.js";
import { toConnectError } from "./connect-error.js";
import { claimsKey, failureCodeKey } from "./context.js";
import type { JwtAuth, JwtAuthOptions, Protocol } from "./jwt-auth-options.js";
import { createRuleBook, type MethodRule } from "./method-rules.js";
import { endAtAbort, startExpiry } from "./stream-expiry.js";

// Marks a call the gate has decided, with the JwtAuth that decided it.
const decidedBy = createContextKey<object | undefined>(undefined, {
  description: "connect-jwt: decided by",
});

// What the gate returns when it decided at once: a promise settled long ago.
const decided: Promise<void> = Promise.resolve();

/** Every option of {@link createJwtAuth}, for the check of unknown options. */
const jwtAuthOptions: OptionNames<JwtAuthOptions> = {
  ...verifierOptions,
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

/** The claims of an admitted call; `undefined` for a public method called without a token. */
type Admitted = JwtClaims | undefined;

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
  const where = "createJwtAuth";
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `${where}: pass an options object with a key source, e.g. { jwks, algorithms }`,
    );
  }
  assertKnownOptions(options, namesOf(jwtAuthOptions), where);
  const verifier = buildVerifier(options, where);
  const audiences = [options.audience, ...(options.issuers ?? []).map((i) => i.audience)].flat();
  const sets = createClaimSets(
    options,
    audiences.filter((a) => typeof a === "string"),
    where,
  );
  const rules = createRuleBook(options, sets, where);
  const failureCode = options.failureCode ?? Code.PermissionDenied;
  if (!isCode(failureCode)) {
    throw new TypeError(`${where}: failureCode must be a Code, e.g. Code.Unauthenticated`);
  }
  const { onDenied, onAuthenticated, endStreamsAtExpiry = true } = options;
  if (typeof endStreamsAtExpiry !== "boolean") {
    throw new TypeError(`${where}: endStreamsAtExpiry must be true or false`);
  }
  for (const [name, hook] of Object.entries({ onDenied, onAuthenticated })) {
    if (hook !== undefined && typeof hook !== "function") {
      throw new TypeError(`${where}: ${name} must be a function`);
    }
  }
  const self = {};

  /** The error a refused call ends with, returned for the caller to reject with. */
  function deny(
    error: AuthError,
    method: string,
    protocol: Protocol,
    claims?: JwtClaims,
  ): ConnectError {
    if (onDenied !== undefined) {
      notify(onDenied, { reason: error.code, error, method, protocol, subject: subjectOf(claims) });
    }
    return toConnectError(error, failureCode);
  }

  /**
   * Decides a call and, when it is admitted, records its claims in `values`
   * (and, for the gate, that the gate decided it). At once (no promise, no
   * turn of the event loop) when it can, which is the common case: a refusal
   * of the header or of a token that fails before its signature, or a cached
   * token whose rule decides synchronously; `undefined` then means admitted.
   * Otherwise a promise that settles once the call is recorded, or rejects
   * with its refusal. A refusal decided at once is the ConnectError returned,
   * not thrown: a throw caught a few frames up costs several µs in a busy
   * server.
   */
  function authenticate(
    method: DescMethod,
    header: Headers,
    protocol: Protocol,
    values: ContextValues,
    gate: boolean,
  ): undefined | ConnectError | Promise<void> {
    const entry = rules.ruleFor(method);
    // The verifier checks the token's syntax (parseBearerToken's last step) on a cache miss.
    const token = readBearerToken(header.get("authorization"), verifier.maxTokenSize);
    const claims = token instanceof AuthError ? token : verifier.verifyNow(token);
    if (claims instanceof AuthError) {
      return settle(refuseToken(claims, entry, protocol), values, gate);
    }
    if (claims instanceof Promise) {
      return verifyThenAuthorize(claims, method, entry, header, protocol, values, gate);
    }
    return settle(authorize(claims, method, entry, header, protocol), values, gate);
  }

  /** Records an outcome decided at once; returns a refusal, or a promise not yet settled. */
  function settle(
    outcome: Admitted | ConnectError | Promise<Admitted>,
    values: ContextValues,
    gate: boolean,
  ): undefined | ConnectError | Promise<void> {
    if (outcome instanceof ConnectError) {
      return outcome;
    }
    if (outcome instanceof Promise) {
      return outcome.then((claims) => record(values, claims, gate));
    }
    record(values, outcome, gate);
    return undefined;
  }

  async function verifyThenAuthorize(
    pending: Promise<JwtClaims>,
    method: DescMethod,
    entry: MethodRule,
    header: Headers,
    protocol: Protocol,
    values: ContextValues,
    gate: boolean,
  ): Promise<void> {
    let claims: JwtClaims;
    try {
      claims = await pending;
    } catch (e) {
      const error =
        e instanceof AuthError ? e : new AuthError("ERR_TOKEN_INVALID", { cause: safeCause(e) });
      record(values, orThrow(refuseToken(error, entry, protocol)), gate);
      return;
    }
    // A rule that decides synchronously is not awaited: no extra turn for it.
    const outcome = authorize(claims, method, entry, header, protocol);
    record(values, orThrow(outcome instanceof Promise ? await outcome : outcome), gate);
  }

  /** A header or token that did not pass: refused, unless the method is public and none came. */
  function refuseToken(
    error: AuthError,
    { rule, name }: MethodRule,
    protocol: Protocol,
  ): undefined | ConnectError {
    if (error.code === "ERR_TOKEN_MISSING" && rule.public) {
      return undefined;
    }
    return deny(error, name, protocol);
  }

  function authorize(
    claims: JwtClaims,
    method: DescMethod,
    { rule, name }: MethodRule,
    header: Headers,
    protocol: Protocol,
  ): Admitted | ConnectError | Promise<Admitted> {
    if (rule.public || rule.anyToken === true) {
      return admit(undefined, claims, name, protocol);
    }
    const decision = rule.decide(claims, {
      method: name,
      service: method.parent.typeName,
      headers: header,
    });
    // Most rules decide synchronously: no promise for them.
    return decision instanceof Promise
      ? decision.then((refusal) => orThrow(admit(refusal, claims, name, protocol)))
      : admit(decision, claims, name, protocol);
  }

  function admit(
    refusal: AuthError | undefined,
    claims: JwtClaims,
    name: string,
    protocol: Protocol,
  ): JwtClaims | ConnectError {
    if (refusal !== undefined) {
      return deny(refusal, name, protocol, claims);
    }
    if (onAuthenticated !== undefined) {
      notify(onAuthenticated, { method: name, protocol, subject: subjectOf(claims) });
    }
    return claims;
  }

  /** Puts an admitted call's claims in its context values; `gate` marks it decided. */
  function record(values: ContextValues, claims: Admitted, gate: boolean) {
    values.set(claimsKey, claims);
    values.set(failureCodeKey, failureCode);
    if (gate) {
      values.set(decidedBy, self);
    }
  }

  return {
    verify: (token) => verifier.verify(token),
    warmUp: () => verifier.warmUp(),
    assertRules: (services, assertOptions) => rules.assertRules(services, assertOptions),
    requestGate(ctx) {
      try {
        const protocol = protocolOf(ctx.protocolName);
        const outcome = authenticate(ctx.method, ctx.requestHeader, protocol, ctx.values, true);
        if (outcome === undefined) {
          return decided;
        }
        return outcome instanceof ConnectError ? Promise.reject(outcome) : outcome;
      } catch (err) {
        return Promise.reject(err);
      }
    },
    interceptor: (next) => (req) => {
      if (req.method.methodKind !== "unary") {
        return intercept(next, req);
      }
      // A unary call: its response is no stream to end at expiry. Decided by
      // the gate, nothing is left to do; decided at once here, no async step
      // of our own is on the way.
      if (req.contextValues.get(decidedBy) !== self) {
        try {
          const protocol = protocolOf(req.header.get("content-type"));
          const outcome = authenticate(req.method, req.header, protocol, req.contextValues, false);
          if (outcome instanceof ConnectError) {
            return Promise.reject(outcome);
          }
          if (outcome !== undefined) {
            return intercept(next, req, outcome);
          }
        } catch (err) {
          return Promise.reject(err);
        }
      }
      return next(req);
    },
  };

  async function intercept(
    next: Parameters<Interceptor>[0],
    req: UnaryRequest | StreamRequest,
    pending?: Promise<void>,
  ) {
    const protocol = protocolOf(req.header.get("content-type"));
    if (pending !== undefined) {
      await pending;
    } else if (req.contextValues.get(decidedBy) !== self) {
      const outcome = authenticate(req.method, req.header, protocol, req.contextValues, false);
      if (outcome instanceof ConnectError) {
        throw outcome;
      }
      await outcome;
    }
    const exp = req.contextValues.get(claimsKey)?.exp;
    if (!req.stream || !endStreamsAtExpiry || typeof exp !== "number") {
      return await next(req);
    }
    const method = rules.ruleFor(req.method).name;
    const expiry = startExpiry((exp + verifier.clockTolerance) * 1000, () => {
      const error = new AuthError("ERR_TOKEN_EXPIRED");
      const subject = subjectOf(req.contextValues.get(claimsKey));
      notify(onDenied, { reason: error.code, error, method, protocol, subject });
      return toConnectError(error, failureCode);
    });
    // Connect aborts the call's signal when the call ends, however it ends: the timer goes with it.
    req.signal.addEventListener("abort", expiry.stop, { once: true });
    try {
      // The handler's context takes its signal and its messages from the request
      // given to `next`: at the deadline its iteration ends with the refusal and
      // its signal aborts, so no message sent after expiry reaches it.
      const res = await next({
        ...req,
        signal: AbortSignal.any([req.signal, expiry.signal]),
        message: endAtAbort(req.message, expiry.signal),
      });
      if (req.method.methodKind === "client_streaming" || !res.stream) {
        // The handler has returned. Before the deadline, its answer stands even
        // if the token expires while it is sent; after it, the call is refused.
        expiry.stop();
        expiry.signal.throwIfAborted();
        return res;
      }
      return { ...res, message: endAtAbort(res.message, expiry.signal, expiry.stop) };
    } catch (err) {
      expiry.stop();
      throw err;
    }
  }
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

/** What a call was admitted with; a refusal is thrown, for the promise being settled. */
function orThrow(outcome: Admitted | ConnectError): Admitted {
  if (outcome instanceof ConnectError) {
    throw outcome;
  }
  return outcome;
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
