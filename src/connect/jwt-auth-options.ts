import type { DescService } from "@bufbuild/protobuf";
import type { Code, HandlerContext, Interceptor } from "@connectrpc/connect";
import type { JwtClaims } from "../core/claims.js";
import type { DpopOptions } from "../core/dpop.js";
import type { AuthError, AuthErrorCode } from "../core/errors.js";
import type { ClaimSetOptions } from "../core/scopes-and-roles.js";
import type { VerifierOptions } from "../core/verifier.js";
import type { AssertRulesOptions, RuleOptions } from "./method-rules.js";

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
  /**
   * The token's `sub`, when a valid token was refused (by the method's rule,
   * or at its expiry during a stream); undefined when no token verified.
   */
  readonly subject: string | undefined;
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
   * End a server-streaming, client-streaming or bidi call when its token
   * expires (at `exp` plus the clock tolerance): the handler's iteration of
   * the request messages ends with the refusal, its `ctx.signal` aborts, and
   * the client gets the failure code and `error="invalid_token"`. A response
   * the handler completed before then is never refused. One timer per call,
   * no memory per message. Default true. Needs the interceptor (a request
   * gate cannot end a stream).
   */
  endStreamsAtExpiry?: boolean;
  /** Called for every refused call. Exceptions it throws are ignored. */
  onDenied?: (event: DeniedEvent) => void;
  /** Called for every call whose token was verified. Exceptions it throws are ignored. */
  onAuthenticated?: (event: AuthenticatedEvent) => void;
  /**
   * Accept DPoP-bound tokens (RFC 9449): `Authorization: DPoP <token>` with a
   * fresh `DPoP` proof per call, signed with the key the token is bound to
   * (`cnf.jkt`). A bound token sent as `Bearer` is refused. Off by default.
   *
   * @example
   * ```ts
   * createJwtAuth({ jwks, algorithms: ["ES256"], dpop: { origins: ["https://api.example.com"] } });
   * ```
   */
  dpop?: DpopOptions;
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
