import { DemoService } from "../gen/demo/v1/demo_pb.js";
import type { ExternalIssuer } from "./config.js";
import { describeIssuer } from "./home-page.js";
import { issuerPaths } from "./issuer-endpoints.js";
import { metricsPath } from "./metrics-endpoint.js";
import { revokePath } from "./revoke-endpoint.js";

/** The protocols `buf curl` speaks, with the flags each needs. */
export const bufCurlProtocols = {
  connect: ["--protocol", "connect"],
  grpc: ["--protocol", "grpc"],
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
 * `insecure` skips the check of the server's certificate (a self-signed one).
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
  options: { token?: string; data?: string; insecure?: boolean } = {},
): string[] {
  return [
    "curl",
    ...bufCurlProtocols[protocol],
    // gRPC needs HTTP/2. Over TLS the handshake (ALPN) agrees on it; without
    // TLS the client must know beforehand (h2c, "prior knowledge").
    ...(protocol === "grpc" && url.startsWith("http:") ? ["--http2-prior-knowledge"] : []),
    ...(options.insecure === true ? ["--insecure"] : []),
    "--schema",
    "proto",
    ...(options.token === undefined ? [] : ["-H", `Authorization: Bearer ${options.token}`]),
    ...(options.data === undefined ? [] : ["-d", options.data]),
    `${url}/${DemoService.typeName}/${method}`,
  ];
}

/** BannerTls describes the certificate of an HTTPS demo for the banner. */
export interface BannerTls {
  /** Made at start for localhost: clients must be told not to check it (`--insecure`). */
  readonly selfSigned: boolean;
  /** Its SHA-256 fingerprint, to compare with what a browser shows. */
  readonly fingerprint: string;
}

/** The lines on protocols, TLS and the web page that both banners print. */
function serverLines(url: string, tls: BannerTls | undefined): string[] {
  if (tls === undefined) {
    return [
      "  protocols: Connect and gRPC-Web (HTTP/1.1 or h2c), gRPC (h2c prior knowledge), one port",
      `  web page:  ${url}/`,
      `  metrics:   ${url}${metricsPath} (Prometheus text format)`,
    ];
  }
  return [
    "  protocols: Connect, gRPC-Web and gRPC over HTTPS; ALPN picks h2 or http/1.1, one port",
    tls.selfSigned
      ? "  tls:       self-signed certificate for localhost, 127.0.0.1 and ::1, made at start"
      : "  tls:       the certificate of --cert",
    `             SHA-256 ${tls.fingerprint}`,
    ...(tls.selfSigned
      ? ["             (browsers warn about it; buf curl needs --insecure, curl needs -k)"]
      : []),
    `  web page:  ${url}/`,
    `  metrics:   ${url}${metricsPath} (Prometheus text format)`,
  ];
}

/**
 * banner is what `npm start` prints: where the server is, a sample token and
 * commands ready to paste. This is the one place a token is printed on
 * purpose; it is a short-lived token of a key that dies with the process.
 */
export function banner(
  url: string,
  token: string,
  tls?: BannerTls,
  revocations: "redis" | "memory" = "memory",
): string {
  const insecure = tls?.selfSigned === true;
  const list = revocations === "redis" ? "shared through REDIS_URL" : "in memory";
  return [
    `connect-jwt demo listening on ${url}`,
    ...serverLines(url, tls),
    `  issuer:    ${url} (embedded, ephemeral ES256 key), audience connect-jwt-demo`,
    `  keys:      ${url}${issuerPaths.jwks}`,
    `  revoke:    POST ${url}${revokePath} {"jti": …} or {"sub": …} (revocations ${list})`,
    "",
    `A sample token (sub "${sampleTokenRequest.sub}", scope "${sampleTokenRequest.scope}", 1 hour):`,
    `export TOKEN=${token}`,
    "",
    ...callCommands(url, insecure),
    "",
    "Mint another token:",
    `curl -s${insecure ? "k" : ""} -X POST -H "Content-Type: application/json" -d '{"sub":"alice","scope":"notes:read","ttl":300}' ${url}${issuerPaths.token}`,
    "",
  ].join("\n");
}

/**
 * externalBanner is what `npm start` prints with an external issuer: which
 * issuer the server trusts and how to get one of its tokens. It mints none.
 */
export function externalBanner(url: string, external: ExternalIssuer, tls?: BannerTls): string {
  const where =
    "issuerUrl" in external
      ? `its token endpoint (see ${external.issuerUrl.replace(/\/$/, "")}/.well-known/openid-configuration)`
      : "its token endpoint";
  return [
    `connect-jwt demo listening on ${url}`,
    ...serverLines(url, tls),
    `  issuer:    ${describeIssuer(external)}`,
    "  (external: this server mints no tokens and serves no issuer endpoints)",
    "",
    `Get an access token for audience "${external.audience}" from the issuer, for example with`,
    `a client-credentials grant at ${where}, then:`,
    "export TOKEN=<the access token>",
    "",
    ...callCommands(url, tls?.selfSigned === true),
    "",
  ].join("\n");
}

/** The `buf curl` lines both banners print, using `$TOKEN`. */
function callCommands(url: string, insecure: boolean): string[] {
  // Double quotes so that the shell expands $TOKEN; single quotes keep JSON as is.
  const shell = (args: string[]) =>
    ["npx", "buf", ...args]
      .map((arg) =>
        /^[\w@%+=:,./-]+$/.test(arg) ? arg : arg.startsWith("{") ? `'${arg}'` : `"${arg}"`,
      )
      .join(" ");
  const withToken = { token: "$TOKEN", insecure };
  return [
    "Call WhoAmI with it over each protocol (from the repository root):",
    ...Object.keys(bufCurlProtocols).map((protocol) =>
      shell(bufCurlArgs(url, protocol as BufCurlProtocol, "WhoAmI", withToken)),
    ),
    "",
    "Ping needs no token; ListNotes streams:",
    shell(bufCurlArgs(url, "connect", "Ping", { data: '{"text":"hello"}', insecure })),
    shell(bufCurlArgs(url, "grpc", "ListNotes", { ...withToken, data: '{"limit":2}' })),
  ];
}
