import type { DescMethod } from "@bufbuild/protobuf";
import { Code, type ContextValues, createContextKey, type Interceptor } from "@connectrpc/connect";
import { parseBearerToken } from "../core/bearer-token.js";
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

  function deny(error: AuthError, method: string, protocol: Protocol): never {
    notify(onDenied, { reason: error.code, error, method, protocol });
    throw toConnectError(error, failureCode);
  }

  async function authenticate(method: DescMethod, header: Headers, protocol: Protocol) {
    const name = `${method.parent.typeName}/${method.name}`;
    const rule = rules.ruleFor(method);
    let claims: JwtClaims;
    try {
      const token = parseBearerToken(header.get("authorization"), verifier.maxTokenSize);
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
      const refusal = await rule.decide(claims, {
        method: name,
        service: method.parent.typeName,
        headers: header,
      });
      if (refusal !== undefined) {
        deny(refusal, name, protocol);
      }
    }
    notify(onAuthenticated, {
      method: name,
      protocol,
      subject: typeof claims.sub === "string" ? claims.sub : undefined,
    });
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
    interceptor: (next) => async (req) => {
      const protocol = protocolOf(req.header.get("content-type"));
      if (req.contextValues.get(decidedBy) !== self) {
        record(req.contextValues, await authenticate(req.method, req.header, protocol));
      }
      const res = await next(req);
      const exp = req.contextValues.get(claimsKey)?.exp;
      if (!res.stream || !endStreamsAtExpiry || typeof exp !== "number") {
        return res;
      }
      const method = `${req.service.typeName}/${req.method.name}`;
      const deadlineMs = (exp + verifier.clockTolerance) * 1000;
      const message = endAtExpiry(res.message, deadlineMs, () => {
        const error = new AuthError("ERR_TOKEN_EXPIRED");
        notify(onDenied, { reason: error.code, error, method, protocol });
        return toConnectError(error, failureCode);
      });
      return { ...res, message };
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
