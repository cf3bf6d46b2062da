import { parseArgs } from "node:util";
import { parseCorsOrigins } from "./cors.js";
import { parsePublicOrigins } from "./public-origins.js";

/** The `aud` of the embedded issuer's tokens, and the default audience with `JWT_ISSUER_URL`. */
export const demoAudience = "connect-jwt-demo";

/**
 * ExternalIssuer is where tokens come from when the demo trusts a real issuer
 * instead of its embedded one: OIDC discovery (`issuerUrl`, which is also the
 * `iss` required), or a JWKS URL with the exact `iss` to require. Either way
 * with the `aud` this server answers to.
 */
export type ExternalIssuer =
  | { readonly issuerUrl: string; readonly audience: string }
  | { readonly jwksUrl: string; readonly issuer: string; readonly audience: string };

/** ServerConfig is what `npm start` reads from the environment. */
export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  readonly corsOrigins: "*" | string[];
  /** `PUBLIC_ORIGIN`: the origins clients call the demo as; unset: the address it listens on. */
  readonly publicOrigins: string[] | undefined;
  /** Set when the `JWT_*` variables ask for an external issuer. */
  readonly external: ExternalIssuer | undefined;
  /** `REDIS_URL`: keep the revocation list in this Redis, shared by the demos that use it. */
  readonly redisUrl: string | undefined;
}

/** The variables that switch the demo to an external issuer. */
export const externalIssuerVariables = [
  "JWT_ISSUER_URL",
  "JWT_JWKS_URL",
  "JWT_ISSUER",
  "JWT_AUDIENCE",
] as const;

/**
 * readConfig reads `HOST` (default 127.0.0.1), `PORT` (default 8080; 0 picks
 * a free port), `CORS_ORIGINS` (comma-separated; default any origin),
 * `REDIS_URL` (a `redis://` or `rediss://` URL; default: revocations and
 * used DPoP proofs in memory), `PUBLIC_ORIGIN` (comma-separated; the origins
 * DPoP proofs name) and the external issuer variables:
 *
 * - `JWT_ISSUER_URL` (OIDC discovery), with `JWT_AUDIENCE` (default
 *   `connect-jwt-demo`);
 * - or `JWT_JWKS_URL` with `JWT_ISSUER` and `JWT_AUDIENCE`, all three required.
 *
 * A bad or missing value throws a `TypeError` naming the variable and the fix,
 * never its value.
 */
export function readConfig(env: Readonly<Record<string, string | undefined>>): ServerConfig {
  const rawPort = env.PORT?.trim() || "8080";
  const port = Number(rawPort);
  if (!/^\d+$/.test(rawPort) || port > 65535) {
    throw new TypeError("PORT must be a port number from 0 to 65535 (0 picks a free port)");
  }
  return {
    host: env.HOST?.trim() || "127.0.0.1",
    port,
    corsOrigins: parseCorsOrigins(env.CORS_ORIGINS),
    publicOrigins: parsePublicOrigins(env.PUBLIC_ORIGIN),
    external: readExternalIssuer(env),
    redisUrl: readRedisUrl(env.REDIS_URL?.trim() || undefined),
  };
}

function readRedisUrl(value: string | undefined): string | undefined {
  const protocol = value !== undefined && URL.canParse(value) ? new URL(value).protocol : "";
  if (value !== undefined && protocol !== "redis:" && protocol !== "rediss:") {
    throw new TypeError("REDIS_URL must be a redis:// URL such as redis://127.0.0.1:6379");
  }
  return value;
}

type Variable = (typeof externalIssuerVariables)[number];

function readExternalIssuer(
  env: Readonly<Record<string, string | undefined>>,
): ExternalIssuer | undefined {
  const value = (name: Variable) => env[name]?.trim() || undefined;
  const issuerUrl = value("JWT_ISSUER_URL");
  const jwksUrl = value("JWT_JWKS_URL");
  const issuer = value("JWT_ISSUER");
  const audience = value("JWT_AUDIENCE");
  if (issuerUrl !== undefined && jwksUrl !== undefined) {
    throw new TypeError(
      "set JWT_ISSUER_URL (OIDC discovery) or JWT_JWKS_URL (with JWT_ISSUER), not both",
    );
  }
  if (issuerUrl !== undefined) {
    checkUrl("JWT_ISSUER_URL", issuerUrl);
    if (issuer !== undefined) {
      throw new TypeError(
        "JWT_ISSUER goes with JWT_JWKS_URL; with JWT_ISSUER_URL the issuer is that URL, so unset JWT_ISSUER",
      );
    }
    return { issuerUrl, audience: audience ?? demoAudience };
  }
  if (jwksUrl !== undefined) {
    checkUrl("JWT_JWKS_URL", jwksUrl);
    const missing = [
      ...(issuer === undefined ? ["JWT_ISSUER (the exact iss of the tokens)"] : []),
      ...(audience === undefined ? ["JWT_AUDIENCE (the aud this server answers to)"] : []),
    ];
    if (issuer === undefined || audience === undefined) {
      throw new TypeError(`JWT_JWKS_URL also needs ${missing.join(" and ")}`);
    }
    return { jwksUrl, issuer, audience };
  }
  const stray = (["JWT_ISSUER", "JWT_AUDIENCE"] as const).filter((n) => value(n) !== undefined);
  if (stray.length > 0) {
    throw new TypeError(
      `${stray.join(" and ")} ${stray.length === 1 ? "needs" : "need"} JWT_ISSUER_URL (OIDC discovery) or JWT_JWKS_URL; set one, or unset ${stray.join(" and ")} to use the embedded issuer`,
    );
  }
  return undefined;
}

// The https-or-loopback rule is connect-jwt's (createJwtAuth enforces it);
// this only catches what is not a web URL at all, naming the variable.
function checkUrl(name: Variable, value: string) {
  const protocol = URL.canParse(value) ? new URL(value).protocol : undefined;
  if (protocol !== "https:" && protocol !== "http:") {
    throw new TypeError(`${name} must be an https URL such as https://auth.example.com/`);
  }
}

/**
 * TlsSource is where the certificate of `npm start -- --tls` comes from: one
 * made at start for localhost (self-signed), or PEM files.
 */
export type TlsSource =
  | { readonly selfSigned: true }
  | { readonly certFile: string; readonly keyFile: string };

/** ServerArgs is what `npm start -- <args>` reads from the command line. */
export interface ServerArgs {
  /** Set for HTTPS; unset for cleartext. */
  readonly tls: TlsSource | undefined;
  readonly help: boolean;
}

/** The command-line usage of `npm start`. */
export const usage = `usage: npm start -- [--tls] [--cert <file> --key <file>]

  (no flags)                    cleartext: HTTP/1.1 and h2c on one port
  --tls                         HTTPS with a self-signed certificate for localhost,
                                made at start (ALPN h2 and http/1.1 on one port)
  --cert <file> --key <file>    HTTPS with this PEM certificate (chain) and key

Environment: HOST, PORT, CORS_ORIGINS, REDIS_URL, PUBLIC_ORIGIN, JWT_ISSUER_URL, JWT_JWKS_URL,
JWT_ISSUER, JWT_AUDIENCE.
`;

/**
 * readArgs reads the flags of `npm start` (see {@link usage}). `--cert` and
 * `--key` go together and imply `--tls`. A mistake throws a `TypeError` that
 * says how to fix it.
 */
export function readArgs(argv: readonly string[]): ServerArgs {
  let values: { tls?: boolean; cert?: string; key?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        tls: { type: "boolean" },
        cert: { type: "string" },
        key: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    // parseArgs names the flag; only our usage is added.
    throw new TypeError(`${err instanceof Error ? err.message : String(err)}\n${usage}`);
  }
  const { cert, key } = values;
  if ((cert === undefined) !== (key === undefined)) {
    throw new TypeError(
      `${cert === undefined ? "--key needs --cert" : "--cert needs --key"}: give both PEM files, or use --tls alone for a self-signed certificate`,
    );
  }
  const tls: TlsSource | undefined =
    cert !== undefined && key !== undefined
      ? { certFile: cert, keyFile: key }
      : values.tls === true
        ? { selfSigned: true }
        : undefined;
  return { tls, help: values.help === true };
}
