import { DemoService } from "../gen/demo/v1/demo_pb.js";
import type { ExternalIssuer } from "./config.js";
import { publicMethods } from "./demo-service.js";
import { issuerPaths } from "./issuer-endpoints.js";
import { metricsPath } from "./metrics-endpoint.js";

const kinds = {
  unary: "unary",
  server_streaming: "server streaming",
  client_streaming: "client streaming",
  bidi_streaming: "bidi streaming",
} as const;

/**
 * homePage is the plain-text answer to `GET /about` (shown on the web page at
 * `/` too): what this server is and what it serves. It lists the methods from
 * the service descriptor, so it cannot drift from the proto.
 */
export function homePage(url: string, external?: ExternalIssuer): string {
  const methods = DemoService.methods.map((method) => {
    const path = `${DemoService.typeName}/${method.name}`;
    const access = (publicMethods as readonly string[]).includes(path) ? "public" : "bearer token";
    const line = `  POST ${url}/${path}`.padEnd(url.length + 40);
    return `${line} ${kinds[method.methodKind]}, ${access}`;
  });
  return [
    "connect-jwt demo server",
    "",
    "JWT bearer authentication for Connect-RPC. DemoService is served over the",
    ...(url.startsWith("https:")
      ? [
          "Connect, gRPC-Web and gRPC protocols on this one HTTPS port: the TLS handshake",
          "(ALPN) picks HTTP/2 (h2) or HTTP/1.1.",
        ]
      : [
          "Connect, gRPC-Web and gRPC protocols on this one port: HTTP/1.1 for browsers",
          "and curl, HTTP/2 with prior knowledge (h2c) for gRPC clients.",
        ]),
    "",
    "RPCs (demo.v1.DemoService):",
    ...methods,
    "",
    ...(external === undefined
      ? [
          "Embedded dev issuer (an ES256 key made at start; its tokens die with the process):",
          `  GET  ${url}${issuerPaths.discovery}`,
          `  GET  ${url}${issuerPaths.jwks}`,
          `  POST ${url}${issuerPaths.token}  {"sub": "alice", "scope": "notes:read", "ttl": 300}`,
          "       (with a DPoP proof header: a token bound to the proof's key, RFC 9449)",
        ]
      : [
          "Tokens come from an external issuer (this server mints none):",
          `  ${describeIssuer(external)}`,
        ]),
    "",
    "connect-jwt's metrics (decisions, token cache, key fetches) for Prometheus:",
    `  GET  ${url}${metricsPath}`,
    "",
    "Try:",
    `  ${url}/ in a browser: the demo page`,
    `  npx buf curl --protocol connect --schema proto ${url}/${DemoService.typeName}/Ping`,
    ...(url.startsWith("https:")
      ? ["  (add --insecure to buf curl for a self-signed certificate)"]
      : []),
    "",
  ].join("\n");
}

/** describeIssuer says in one line which issuer, keys and audience the server trusts. */
export function describeIssuer(external: ExternalIssuer): string {
  return "issuerUrl" in external
    ? `${external.issuerUrl} (OIDC discovery), audience ${external.audience}`
    : `${external.issuer}, keys from ${external.jwksUrl}, audience ${external.audience}`;
}
