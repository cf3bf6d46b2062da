// What `npm run bench` measures: the server configurations ("cases"), and for
// each the loads run against it. A round starts every case's server in turn
// (each in its own process), runs its loads, and stops it; rounds repeat so
// that configurations interleave (A B C A B C ...) and ratios compare runs made
// minutes apart at most.
import type { Alg } from "./keys.js";
import type { ServerConfig } from "./server.js";

/** The token streams a load can send. */
export type TokenSource =
  /** No `authorization` header. */
  | { readonly kind: "none" }
  /** One fixed header value on every request. */
  | { readonly kind: "fixed"; readonly value: string }
  /** The warm pool of `alg`: a few hundred distinct valid tokens, reused. */
  | { readonly kind: "warm"; readonly alg: Alg }
  /** The cold pool of `alg`: a new valid token on every request. */
  | { readonly kind: "cold"; readonly alg: Alg }
  /** The expired pool of `alg`: a new expired token on every request. */
  | { readonly kind: "expired"; readonly alg: Alg };

export type Generator = "h2load" | "loadgen";

/** One measurement: a load, and the outcome every request must have. */
export interface Load {
  /** Unique over the whole plan; results are keyed by it. */
  readonly id: string;
  readonly generator: Generator;
  readonly protocol: "connect" | "grpc";
  readonly tokens: TokenSource;
  readonly expect: "ok" | "refused";
  /** A request body file (the 4 MiB gate loads); none otherwise. */
  readonly body?: "4mib";
}

export interface Case {
  readonly id: string;
  readonly server: ServerConfig;
  readonly loads: readonly Load[];
}

/** The refusal kinds, each a token the ES256 servers refuse. */
export const refusalKinds = [
  "missing",
  "malformed",
  "expired",
  "wrong-issuer",
  "wrong-audience",
  "wrong-algorithm",
  "bad-signature",
] as const;
export type RefusalKind = (typeof refusalKinds)[number];

export interface PlanOptions {
  readonly algs: readonly Alg[];
  /** The algorithm of the refusal and gate cases. */
  readonly refusalAlg: Alg;
  readonly refusals: Readonly<Record<RefusalKind, string | undefined>>;
}

/** plan lists every case; ids are stable so that the report can find loads. */
export function plan(o: PlanOptions): Case[] {
  const cases: Case[] = [];
  const warm = (alg: Alg): TokenSource => ({ kind: "warm", alg });
  const cold = (alg: Alg): TokenSource => ({ kind: "cold", alg });
  const a = o.refusalAlg;
  /** A load whose requests must all be served, named `<case>/<generator>/<what>`. */
  const served = (
    caseId: string,
    generator: Generator,
    what: "connect" | "grpc" | "warm" | "cold",
    tokens: TokenSource,
  ): Load => ({
    id: `${caseId}/${generator}/${what}`,
    generator,
    protocol: what === "grpc" ? "grpc" : "connect",
    tokens,
    expect: "ok",
  });
  const refusalLoads = (prefix: string): Load[] =>
    refusalKinds.map((kind) => {
      const value = o.refusals[kind];
      return {
        id: `${prefix}/refuse/${kind}`,
        generator: "h2load",
        protocol: "connect",
        tokens: value === undefined ? { kind: "none" } : { kind: "fixed", value },
        expect: "refused",
      };
    });
  /** Refusals of a new token on every request: no refused token is seen twice. */
  const newTokenRefusal = (prefix: string): Load => ({
    id: `${prefix}/loadgen/refuse-expired-new`,
    generator: "loadgen",
    protocol: "connect",
    tokens: { kind: "expired", alg: a },
    expect: "refused",
  });

  // The limit: no authentication. It receives the same headers as the others
  // (the tokens are ignored), so that only the cost of checking them differs.
  cases.push({
    id: "none",
    server: { impl: "connect", auth: "none", alg: a },
    loads: [
      served("none", "h2load", "connect", warm(a)),
      served("none", "h2load", "grpc", warm(a)),
      served("none", "loadgen", "warm", warm(a)),
      served("none", "loadgen", "cold", cold(a)),
    ],
  });
  for (const alg of o.algs) {
    cases.push({
      id: `jose/${alg}`,
      server: { impl: "connect", auth: "jose", alg },
      loads: [
        served(`jose/${alg}`, "h2load", "connect", warm(alg)),
        served(`jose/${alg}`, "h2load", "grpc", warm(alg)),
        ...(alg === a ? [...refusalLoads(`jose/${alg}`), newTokenRefusal(`jose/${alg}`)] : []),
      ],
    });
    cases.push({
      id: `connect-jwt/${alg}`,
      server: { impl: "connect", auth: "connect-jwt", alg },
      loads: [
        served(`connect-jwt/${alg}`, "h2load", "connect", warm(alg)),
        served(`connect-jwt/${alg}`, "h2load", "grpc", warm(alg)),
        served(`connect-jwt/${alg}`, "loadgen", "warm", warm(alg)),
        ...(alg === a
          ? [...refusalLoads(`connect-jwt/${alg}`), newTokenRefusal(`connect-jwt/${alg}`)]
          : []),
      ],
    });
    // The cold configurations: servers of their own that see only new tokens,
    // from their first request (their warm-up) to their last, one after the
    // other in each round so that the ratio pairs loads a few seconds apart.
    for (const auth of ["jose", "connect-jwt"] as const) {
      cases.push({
        id: `${auth}/${alg}/cold`,
        server: { impl: "connect", auth, alg },
        loads: [served(`${auth}/${alg}`, "loadgen", "cold", cold(alg))],
      });
    }
  }
  // What a refusal costs connect-node itself: a request gate that refuses
  // every call with a new `ConnectError` (the same code, message and challenge
  // each time) and reads nothing.
  cases.push({
    id: "refuse-gate",
    server: { impl: "connect", auth: "refuse-gate", alg: a },
    loads: [
      {
        id: "refuse-gate/refuse/missing",
        generator: "h2load",
        protocol: "connect",
        tokens: { kind: "none" },
        expect: "refused",
      },
    ],
  });
  // The request gate with 4 MiB bodies, on servers that count the body bytes
  // the RPC layer reads (which costs them some throughput: not compared with
  // the other cases).
  cases.push({
    id: "gate",
    server: { impl: "connect", auth: "connect-jwt", alg: a, countBodyBytes: true },
    loads: [
      {
        id: "gate/refused",
        generator: "h2load",
        protocol: "connect",
        tokens: { kind: "none" },
        expect: "refused",
        body: "4mib",
      },
      {
        id: "gate/accepted",
        generator: "h2load",
        protocol: "connect",
        tokens: warm(a),
        expect: "ok",
        body: "4mib",
      },
    ],
  });
  cases.push({
    id: "interceptor-only",
    server: { impl: "connect", auth: "connect-jwt-interceptor", alg: a, countBodyBytes: true },
    loads: [
      {
        id: "interceptor-only/refused",
        generator: "h2load",
        protocol: "connect",
        tokens: { kind: "none" },
        expect: "refused",
        body: "4mib",
      },
    ],
  });
  cases.push({
    id: "grpc-js/none",
    server: { impl: "grpc-js", auth: "none", alg: a },
    loads: [served("grpc-js/none", "h2load", "grpc", warm(a))],
  });
  for (const alg of o.algs) {
    cases.push({
      id: `grpc-js/jose/${alg}`,
      server: { impl: "grpc-js", auth: "jose", alg },
      loads: [served(`grpc-js/jose/${alg}`, "h2load", "grpc", warm(alg))],
    });
  }
  return cases;
}
