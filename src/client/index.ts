// connect-jwt/client: attach bearer or DPoP-bound tokens to Connect, gRPC and
// gRPC-Web calls, in browsers and in Node.js. Nothing here imports Node.js modules.
export { type BearerAuthOptions, bearerAuth } from "./bearer-auth.js";
export { type DpopAuthOptions, dpopAuth } from "./dpop-auth.js";
export { createDpopKeyPair, type DpopAlgorithm, type DpopKeyPair } from "./dpop-key-pair.js";
export type { TokenAuthOptions } from "./token-auth.js";
export type { TokenProvider } from "./token-source.js";
