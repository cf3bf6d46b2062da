// The floors connect-jwt is measured against, as request gates that import
// nothing from Node.js, so that server.ts (Node.js) and edge-server.ts (Bun,
// Deno) serve the same ones.
import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import { claimsKey, type JwtClaims } from "connect-jwt";

// The least a request gate that authenticates must do, for a baseline of
// connect-jwt's cache hit: read the header and record what the handler reads
// (header-gate: the header itself and two markers, as many values as
// connect-jwt records); map-gate also finds the token in a Map and records
// claims the handler reads as it reads connect-jwt's (a Map that grows with
// every new token: for h2load's few). Neither checks anything.
const headerKey = createContextKey<string | null>(null);
const markKey = createContextKey<number>(0);
const gateKey = createContextKey<object | undefined>(undefined);
const leastClaims = new Map<string, JwtClaims>();

/** header-gate (`lookup` false) or map-gate (`lookup` true). */
export function leastGate(lookup: boolean) {
  return (ctx: HandlerContext) => {
    const header = ctx.requestHeader.get("authorization");
    if (lookup) {
      const token = header?.slice(7) ?? "";
      let claims = leastClaims.get(token);
      if (claims === undefined) {
        claims = Object.freeze(
          Object.assign(Object.create(null), { sub: "bench-user-100" }),
        ) as JwtClaims;
        leastClaims.set(token, claims);
      }
      ctx.values.set(claimsKey, claims);
    } else {
      ctx.values.set(headerKey, header);
    }
    ctx.values.set(markKey, 1);
    ctx.values.set(gateKey, leastClaims);
  };
}

/** refuse-gate: refuses every call with a new ConnectError of one code and message, reading nothing. */
export function refuseGate(): Promise<never> {
  return Promise.reject(
    new ConnectError("missing token", Code.PermissionDenied, { "www-authenticate": "Bearer" }),
  );
}
