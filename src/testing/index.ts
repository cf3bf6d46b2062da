// connect-jwt/testing: helpers for your tests. An in-process issuer that serves
// discovery and JWKS on 127.0.0.1, and contexts that carry claims for calling
// handlers directly.
export {
  createTestIssuer,
  type SignOptions,
  type TestIssuer,
  type TestIssuerAlgorithm,
  type TestIssuerOptions,
  type TestIssuerRequests,
} from "./test-issuer.js";
export { createTestContext, withClaims } from "./handler-context.js";
