// connect-jwt/client: attach bearer tokens to Connect, gRPC and gRPC-Web calls,
// in browsers and in Node.js. Nothing here imports Node.js modules.
export { type BearerAuthOptions, bearerAuth } from "./bearer-auth.js";
export type { TokenProvider } from "./token-source.js";
