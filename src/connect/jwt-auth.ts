import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  Code,
  type ContextValues,
  createContextKey,
  type HandlerContext,
  type Interceptor,
} from "@connectrpc/connect";
import { parseBearerToken } from "../core/bearer-token.js";
import { type ClaimSetOptions, createClaimSets } from "../core/claim-sets.js";
import type { JwtClaims } from "../core/claims.js";
import { AuthError, type AuthErrorCode, safeCause } from "../core/errors.js";
import { createVerifier, type VerifierOptions } from "../core/verifier.js";
import { toConnectError } from "./connect-error.js";
import { claimsKey, failureCodeKey } from "./context.js";
import { type AssertRulesOptions, createRuleBook, type RuleOptions } from "./method-rules.js";
import { endAtExpiry } from "./stream-expiry.js";

/** The RPC protocol of a call, as Connect names it. */
export type Protocol = "connect" | "grpc" | "grpc-web";

/**
 * DeniedEvent describes a refused call for logs and metrics. It never holds
 * the token or a claim value.
 */
export interface DeniedEvent {
  /** The stable reason, e.g. `"ERR_TOKEN_EXPIRED"`. */
  readonly reason: AuthErrorCode;
  /** The typed error; its `cause` tells what the JOSE library objected to. */
  readonly error: AuthError;
  /** The method called, as `"pkg.Service/Method"`. */
  readonly method: string;
  /** The protocol the call came in on. */
  readonly protocol: Protocol;
}

/** AuthenticatedEvent describes a token that was verified for a call. */
export interface AuthenticatedEvent {
  /** The method called, as `"pkg.Service/Method"`. */
  readonly method: string;
  /** The protocol the call came in on. */
  readonly protocol: Protocol;
  /** The token's `sub` claim, when it is a string. */
  readonly subject: string | undefined;
}

/**
 * JwtAuthOptions configure {@link createJwtAuth}: a key source (`secret`,
 * `publicKey` or `jwks`), the claims every token must meet, and how calls are
 * refused.
 */
export interface JwtAuthOptions extends VerifierOptions, RuleOptions, ClaimSetOptions {
  /**
   * The code for a failed authentication. Default `Code.PermissionDenied`;
   * `Code.Unauthenticated` is the other usual choice. Calls refused because
   * the keys cannot be loaded always get `Code.Unavailable`.
   */
  failureCode?: Code;
  /**
   * End a server-streaming or bidi call when its token expires (at `exp` plus
   * the clock tolerance), with the failure code and `error="invalid_token"`.
   * Default true. Needs the interceptor (a request gate cannot end a stream).
   */
  endStreamsAtExpiry?: boolean;
  /** Called for every refused call. Exceptions it throws are ignored. */
  onDenied?: (event: DeniedEvent) => void;
  /** Called for every call whose token was verified. Exceptions it throws are ignored. */
  onAuthenticated?: (event: AuthenticatedEvent) => void;
}

/**
 * JwtAuth is one verifier behind a Connect interceptor and a request gate.
 * Give both to your server: the gate refuses calls before their body is read,
 * the interceptor covers servers without a gate (Connect < 2.2), and a call the
 * gate decided is not verified again.
 */
export interface JwtAuth {
  /** The server interceptor: `connectNodeAdapter({ interceptors: [auth.interceptor] })`. */
  readonly interceptor: Interceptor;
  /** The request gate (Connect >= 2.2): `connectNodeAdapter({ requestGate: auth.requestGate })`. */
  readonly requestGate: (ctx: HandlerContext) => Promise<void>;
  /**
   * verify checks a bare token (no `Bearer ` prefix) outside of an RPC, for
   * example on a WebSocket upgrade. It resolves to the frozen claims or
   * rejects with an {@link AuthError}.
   */
  verify(token: string): Promise<JwtClaims>;
  /**
   * warmUp loads remote keys (`jwksUrl`, `issuerUrl`) now instead of on the
   * first call, for servers that want to fail at startup when the issuer is
   * unreachable. It rejects with an {@link AuthError}; keys given in the
   * options need no warming.
   */
  warmUp(): Promise<void>;
  /**
   * assertRules compiles the rule of every method of these services now, and
   * throws a `TypeError` listing each one that does not compile and, with
   * `requireExplicit`, each method that has no rule of its own (in code or in
   * its .proto), so that a new RPC cannot ship unnoticed.
   *
   * @example
   * ```ts
   * auth.assertRules([NotesService], { requireExplicit: true });
   * ```
   */
  assertRules(services: readonly DescService[], options?: AssertRulesOptions): void;
}

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
