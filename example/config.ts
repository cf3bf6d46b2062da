import { parseCorsOrigins } from "./cors.js";

/**
 * ExternalIssuerConfig is where tokens come from when the demo trusts a real
 * issuer instead of its embedded one: OIDC discovery (`issuerUrl`), or a JWKS
 * URL with the exact `iss` and `aud` to require.
 */
export interface ExternalIssuerConfig {
  readonly issuerUrl: string | undefined;
  readonly jwksUrl: string | undefined;
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
}

/** ServerConfig is what `npm start` reads from the environment. */
export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  readonly corsOrigins: "*" | string[];
  /** Set when any `JWT_*` variable asks for an external issuer. */
  readonly external: ExternalIssuerConfig | undefined;
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
 * a free port), `CORS_ORIGINS` (comma-separated; default any origin) and the
 * external issuer variables. A bad value throws a `TypeError` naming the
 * variable and the fix.
 */
export function readConfig(env: Readonly<Record<string, string | undefined>>): ServerConfig {
  const rawPort = env.PORT?.trim() || "8080";
  const port = Number(rawPort);
  if (!/^\d+$/.test(rawPort) || port > 65535) {
    throw new TypeError("PORT must be a port number from 0 to 65535 (0 picks a free port)");
  }
  const value = (name: (typeof externalIssuerVariables)[number]) => env[name] || undefined;
  return {
    host: env.HOST?.trim() || "127.0.0.1",
    port,
    corsOrigins: parseCorsOrigins(env.CORS_ORIGINS),
    external: externalIssuerVariables.every((name) => value(name) === undefined)
      ? undefined
      : {
          issuerUrl: value("JWT_ISSUER_URL"),
          jwksUrl: value("JWT_JWKS_URL"),
          issuer: value("JWT_ISSUER"),
          audience: value("JWT_AUDIENCE"),
        },
  };
}

/**
 * externalIssuerUnsupported explains why an external issuer cannot run yet.
 * It names the variables that were set, never their values.
 */
export function externalIssuerUnsupported(external: ExternalIssuerConfig): string {
  const names = {
    issuerUrl: "JWT_ISSUER_URL",
    jwksUrl: "JWT_JWKS_URL",
    issuer: "JWT_ISSUER",
    audience: "JWT_AUDIENCE",
  } as const satisfies Record<keyof ExternalIssuerConfig, (typeof externalIssuerVariables)[number]>;
  const given = Object.entries(names)
    .filter(([field]) => external[field as keyof ExternalIssuerConfig] !== undefined)
    .map(([, name]) => name);
  return [
    `connect-jwt demo: ${given.join(", ")} ${given.length === 1 ? "asks" : "ask"} for an external issuer.`,
    "That mode needs remote key sources (a JWKS URL or OIDC discovery), which connect-jwt",
    "does not have yet: they come with the key-sources work.",
    `Unset ${externalIssuerVariables.join(", ")} to run with the embedded dev issuer.`,
  ].join("\n");
}
