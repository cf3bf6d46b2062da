import type { JwtClaims } from "./claims.js";

/**
 * ClaimPath names a claim: a dot-separated path (`"realm_access.roles"`), or
 * the path's segments when a name holds dots itself
 * (`["https://example.com/roles"]`, as Auth0's namespaced claims do).
 */
export type ClaimPath = string | readonly string[];

/** Where scopes and roles are read from, instead of the defaults. */
export interface ClaimSetOptions {
  /** Claims that hold scopes. Default `["scope", "scp", "permissions"]`. */
  scopeClaims?: readonly ClaimPath[];
  /**
   * Claims that hold roles. Default `["roles", "realm_access.roles", "groups"]`,
   * plus Keycloak's `resource_access.<audience>.roles` for each configured audience.
   */
  roleClaims?: readonly ClaimPath[];
}

/** The scopes and roles of one token, as sets of exact strings. */
export interface ScopesAndRoles {
  readonly scopes: ReadonlySet<string>;
  readonly roles: ReadonlySet<string>;
}

const defaultScopeClaims: readonly ClaimPath[] = ["scope", "scp", "permissions"];
const defaultRoleClaims: readonly ClaimPath[] = ["roles", "realm_access.roles", "groups"];

/**
 * createScopesAndRoles returns the function that reads the scopes and roles of
 * verified claims, whichever shape the issuer uses: a space-delimited string
 * (`scope`, `scp`) or an array of strings (`scp`, `permissions`, `roles`,
 * `groups`). Entries are compared whole: `admin` never matches `superadmin`.
 * Claims are frozen, so each object's sets are computed once and remembered.
 */
export function createScopesAndRoles(
  options: ClaimSetOptions,
  audiences: readonly string[],
): (claims: JwtClaims) => ScopesAndRoles {
  const scopePaths = paths(options.scopeClaims ?? defaultScopeClaims, "scopeClaims");
  const rolePaths = paths(
    options.roleClaims ?? [
      ...defaultRoleClaims,
      ...audiences.map((aud) => ["resource_access", aud, "roles"]),
    ],
    "roleClaims",
  );
  const read = new WeakMap<JwtClaims, ScopesAndRoles>();
  return (claims) => {
    let found = read.get(claims);
    if (found === undefined) {
      found = { scopes: collect(claims, scopePaths), roles: collect(claims, rolePaths) };
      read.set(claims, found);
    }
    return found;
  };
}

function paths(list: readonly ClaimPath[], option: string): (readonly string[])[] {
  if (!Array.isArray(list)) {
    throw new TypeError(
      `${option} must be an array of claim paths, e.g. ["scope", "realm_access.roles"]`,
    );
  }
  return list.map((path) => {
    const segments = typeof path === "string" ? path.split(".") : path;
    if (
      !Array.isArray(segments) ||
      segments.length === 0 ||
      segments.some((s) => typeof s !== "string" || s === "")
    ) {
      throw new TypeError(
        `${option}: ${JSON.stringify(path)} is not a claim path like "realm_access.roles"`,
      );
    }
    return segments;
  });
}

/** claimAt reads the claim at a path of segments, own properties only. */
export function claimAt(claims: JwtClaims, path: readonly string[]): unknown {
  let value: unknown = claims;
  for (const segment of path) {
    value =
      typeof value === "object" &&
      value !== null &&
      !Array.isArray(value) &&
      Object.hasOwn(value, segment)
        ? (value as Record<string, unknown>)[segment]
        : undefined;
  }
  return value;
}

function collect(claims: JwtClaims, list: readonly (readonly string[])[]): ReadonlySet<string> {
  const found = new Set<string>();
  for (const path of list) {
    const value = claimAt(claims, path);
    const entries =
      typeof value === "string" ? value.split(" ") : Array.isArray(value) ? value : [];
    for (const entry of entries) {
      if (typeof entry === "string" && entry !== "") {
        found.add(entry);
      }
    }
  }
  return found;
}
