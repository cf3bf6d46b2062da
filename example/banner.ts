import { DemoService } from "../gen/demo/v1/demo_pb.js";
import type { ExternalIssuer } from "./config.js";
import { describeIssuer } from "./home-page.js";
import { issuerPaths } from "./issuer-endpoints.js";

/** The protocols `buf curl` speaks, with the flags each needs against a cleartext server. */
export const bufCurlProtocols = {
  connect: ["--protocol", "connect"],
  // gRPC needs HTTP/2; without TLS the client must know beforehand (h2c).
  grpc: ["--protocol", "grpc", "--http2-prior-knowledge"],
  grpcweb: ["--protocol", "grpcweb"],
} as const;

/** A protocol name as `buf curl --protocol` takes it. */
export type BufCurlProtocol = keyof typeof bufCurlProtocols;

/** The sample token printed at start. */
export const sampleTokenRequest = { sub: "demo", scope: "notes:read notes:write", ttl: 3600 };

/**
 * bufCurlArgs builds the arguments of `buf` (starting with `curl`) that call
 * one DemoService method; the schema comes from `proto/` in the repository.
 * The banner prints them and the tests run them, so what is printed works.
 *
 * @example
 * ```ts
 * execFile("node_modules/.bin/buf", bufCurlArgs(url, "grpc", "WhoAmI", { token }));
 * ```
 */
export function bufCurlArgs(
  url: string,
  protocol: BufCurlProtocol,
  method: string,
  options: { token?: string; data?: string } = {},
): string[] {
  return [
    "curl",
    ...bufCurlProtocols[protocol],
    "--schema",
    "proto",
    ...(options.token === undefined ? [] : ["-H", `Authorization: Bearer ${options.token}`]),
    ...(options.data === undefined ? [] : ["-d", options.data]),
    `${url}/${DemoService.typeName}/${method}`,
  ];
}

const protocolsLine =
  "  protocols: Connect and gRPC-Web (HTTP/1.1 or h2c), gRPC (h2c prior knowledge), one port";

/**
 * banner is what `npm start` prints: where the server is, a sample token and
 * commands ready to paste. This is the one place a token is printed on
 * purpose; it is a short-lived token of a key that dies with the process.
 */
export function banner(url: string, token: string): string {
  return [
    `connect-jwt demo listening on ${url}`,
    protocolsLine,
    `  issuer:    ${url} (embedded, ephemeral ES256 key), audience connect-jwt-demo`,
    `  keys:      ${url}${issuerPaths.jwks}`,
    "",
    `A sample token (sub "${sampleTokenRequest.sub}", scope "${sampleTokenRequest.scope}", 1 hour):`,
    `export TOKEN=${token}`,
    "",
    ...callCommands(url),
    "",
    "Mint another token:",
    `curl -s -X POST -H "Content-Type: application/json" -d '{"sub":"alice","scope":"notes:read","ttl":300}' ${url}${issuerPaths.token}`,
    "",
  ].join("\n");
}

/**
 * externalBanner is what `npm start` prints with an external issuer: which
 * issuer the server trusts and how to get one of its tokens. It mints none.
 */
export function externalBanner(url: string, external: ExternalIssuer): string {
  const where =
    "issuerUrl" in external
      ? `its token endpoint (see ${external.issuerUrl.replace(/\/$/, "")}/.well-known/openid-configuration)`
      : "its token endpoint";
  return [
    `connect-jwt demo listening on ${url}`,
    protocolsLine,
    `  issuer:    ${describeIssuer(external)}`,
    "  (external: this server mints no tokens and serves no issuer endpoints)",
    "",
    `Get an access token for audience "${external.audience}" from the issuer, for example with`,
    `a client-credentials grant at ${where}, then:`,
    "export TOKEN=<the access token>",
    "",
    ...callCommands(url),
    "",
  ].join("\n");
}

/** The `buf curl` lines both banners print, using `$TOKEN`. */
function callCommands(url: string): string[] {
  // Double quotes so that the shell expands $TOKEN; single quotes keep JSON as is.
  const shell = (args: string[]) =>
    ["npx", "buf", ...args]
      .map((arg) =>
        /^[\w@%+=:,./-]+$/.test(arg) ? arg : arg.startsWith("{") ? `'${arg}'` : `"${arg}"`,
      )
      .join(" ");
  const withToken = { token: "$TOKEN" };
  return [
    "Call WhoAmI with it over each protocol (from the repository root):",
    ...Object.keys(bufCurlProtocols).map((protocol) =>
      shell(bufCurlArgs(url, protocol as BufCurlProtocol, "WhoAmI", withToken)),
    ),
    "",
    "Ping needs no token; ListNotes streams:",
    shell(bufCurlArgs(url, "connect", "Ping", { data: '{"text":"hello"}' })),
    shell(bufCurlArgs(url, "grpc", "ListNotes", { ...withToken, data: '{"limit":2}' })),
  ];
}
