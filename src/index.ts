// The server side of connect-jwt: what users import first comes first.
export { createJwtAuth, jwtInterceptor } from "./connect/jwt-auth.js";
export type {
  AuthenticatedEvent,
  DeniedEvent,
  JwtAuth,
  JwtAuthOptions,
  Protocol,
} from "./connect/jwt-auth-options.js";
export { type ClaimsSource, claimsKey, getClaims, requireClaims } from "./connect/context.js";
export { joinAuthorizationHeaders, type NodeRequestHeaders } from "./connect/node-headers.js";
export type { JwtClaims } from "./core/claims.js";
export { AuthError, type AuthErrorCode, type BearerChallenge } from "./core/errors.js";
export { KeySetError } from "./core/fetch-json.js";
export { parseBearerToken } from "./core/bearer-token.js";
export {
  createVerifier,
  type RemoteKeysOptions,
  type Verifier,
  type VerifierOptions,
} from "./core/verifier.js";
export type { ClaimPolicyOptions, IssuerOptions } from "./core/issuer-policy.js";
export type { KeySourceOptions } from "./core/key-source.js";
export type { NodeKeyObject, NodeKeyObjectDetails } from "./core/public-key.js";
export type { Revocations } from "./core/revocations.js";
export type { DpopAlgorithm, DpopOptions } from "./core/dpop.js";
export type { DpopNonceOptions } from "./core/dpop-nonce.js";
export {
  type DpopReplayStore,
  type MemoryReplayStoreOptions,
  memoryReplayStore,
} from "./core/replay-store.js";
export type { TokenCacheOptions } from "./core/token-cache.js";
export type { AuthenticationEvent, KeyFetch, Telemetry } from "./core/telemetry.js";
export type { Duration } from "./core/duration.js";
export type { CallInfo, Rule } from "./core/rules.js";
export type { ClaimPath, ClaimSetOptions } from "./core/scopes-and-roles.js";
export type { AssertRulesOptions, RuleOptions, RuleSource } from "./connect/method-rules.js";
