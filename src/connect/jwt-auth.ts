import type { DescMethod } from "@bufbuild/protobuf";
import {
  Code,
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
import { createVerifier } from "../core/verifier.js";
import { toConnectError } from "./connect-error.js";
import { claimsKey, failureCodeKey } from "./context.js";
import type { JwtAuth, JwtAuthOptions, Protocol } from "./jwt-auth-options.js";
import { createRuleBook } from "./method-rules.js";
import { endAtExpiry } from "./stream-expiry.js";

// Marks a call the gate has decided, with the JwtAuth that decided it.
const decidedBy = createContextKey<object | undefined>(undefined, {
  description: "connect-jwt: decided by",
});

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
  const verifier = createVerifier(options, where);
  const audiences = [options.audience, ...(options.issuers ?? []).map((i) => i.audience)].flat();
  const sets = createClaimSets(
    options,
    audiences.filter((a) => typeof a === "string"),
    where,
  );
  const rules = createRuleBook(options, sets, where);
  const failureCode = options.failureCode ?? Code.PermissionDenied;
  if (!Object.values(Code).includes(failureCode)) {
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

  function deny(error: AuthError, method: string, protocol: Protocol, claims?: JwtClaims): never {
    if (onDenied !== undefined) {
      notify(onDenied, { reason: error.code, error, method, protocol, subject: subjectOf(claims) });
    }
    throw toConnectError(error, failureCode);
  }

  async function authenticate(method: DescMethod, header: Headers, protocol: Protocol) {
    const name = `${method.parent.typeName}/${method.name}`;
    const rule = rules.ruleFor(method);
    let claims: JwtClaims;
    try {
      // The verifier checks the token's syntax (parseBearerToken's last step) on a cache miss.
      const token = readBearerToken(header.get("authorization"), verifier.maxTokenSize);
      claims = await verifier.verify(token);
    } catch (e) {
      const error =
        e instanceof AuthError ? e : new AuthError("ERR_TOKEN_INVALID", { cause: safeCause(e) });
      if (error.code === "ERR_TOKEN_MISSING" && rule.public) {
        return undefined;
      }
      deny(error, name, protocol);
    }
    if (!rule.public) {
      const decision = rule.decide(claims, {
        method: name,
        service: method.parent.typeName,
        headers: header,
      });
      // Most rules decide synchronously: no await (and no turn of the event loop) for them.
      const refusal = decision instanceof Promise ? await decision : decision;
      if (refusal !== undefined) {
        deny(refusal, name, protocol, claims);
      }
    }
    if (onAuthenticated !== undefined) {
      notify(onAuthenticated, {
        method: name,
        protocol,
        subject: subjectOf(claims),
      });
    }
    return claims;
  }

  function record(values: ContextValues, claims: JwtClaims | undefined) {
    values.set(claimsKey, claims);
    values.set(failureCodeKey, failureCode);
  }

  return {
    verify: (token) => verifier.verify(token),
    warmUp: () => verifier.warmUp(),
    assertRules: (services, assertOptions) => rules.assertRules(services, assertOptions),
    async requestGate(ctx) {
      record(
        ctx.values,
        await authenticate(ctx.method, ctx.requestHeader, protocolOf(ctx.protocolName)),
      );
      ctx.values.set(decidedBy, self);
    },
    interceptor: (next) => (req) => {
      // A unary call the gate decided: nothing left to do (its response is no
      // stream to end at expiry), and no async step of our own on the way.
      if (req.method.methodKind === "unary" && req.contextValues.get(decidedBy) === self) {
        return next(req);
      }
      return intercept(next, req);
    },
  };

  async function intercept(next: Parameters<Interceptor>[0], req: UnaryRequest | StreamRequest) {
    // The protocol is read from the headers only when a refusal or a stream needs it.
    if (req.contextValues.get(decidedBy) !== self) {
      const protocol = protocolOf(req.header.get("content-type"));
      record(req.contextValues, await authenticate(req.method, req.header, protocol));
    }
    const res = await next(req);
    if (!res.stream || !endStreamsAtExpiry) {
      return res;
    }
    const exp = req.contextValues.get(claimsKey)?.exp;
    if (typeof exp !== "number") {
      return res;
    }
    const protocol = protocolOf(req.header.get("content-type"));
    const method = `${req.service.typeName}/${req.method.name}`;
    const deadlineMs = (exp + verifier.clockTolerance) * 1000;
    const message = endAtExpiry(res.message, deadlineMs, () => {
      const error = new AuthError("ERR_TOKEN_EXPIRED");
      const subject = subjectOf(req.contextValues.get(claimsKey));
      notify(onDenied, { reason: error.code, error, method, protocol, subject });
      return toConnectError(error, failureCode);
    });
    return { ...res, message };
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
