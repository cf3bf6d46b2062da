// One server of the edge benchmark (edge.ts), for Bun and Deno: WhoAmI behind
// Connect's fetch handler, as example/edge/ serves it, with connect-jwt
// (interceptor and request gate), without authentication, or behind one of
// the floors of floors.ts that Node's paired benchmark also measures: map-gate
// (the least a gate that authenticates does) and refuse-gate (a refusal that
// reads nothing). edge.ts
// bundles it for the runtime and configures it by the environment (EDGE_AUTH
// "none", "connect-jwt", "map-gate" or "refuse-gate", JWT_PUBLIC_KEY,
// JWT_ALGORITHM, JWT_ISSUER, JWT_AUDIENCE); it prints "LISTENING <port>".
import { type ConnectRouterOptions, createConnectRouter } from "@connectrpc/connect";
import { createFetchHandler } from "@connectrpc/connect/protocol";
import { createJwtAuth, getClaims } from "connect-jwt";
import { DemoService } from "../gen/demo/v1/demo_pb.js";
import { leastGate, refuseGate } from "./floors.js";

interface Runtime {
  env(name: string): string | undefined;
  serve(fetch: (req: Request) => Promise<Response>): Promise<number>;
}

/** The globals of the two runtimes, whichever this one is. */
interface RuntimeGlobals {
  Bun?: {
    env: Record<string, string | undefined>;
    serve(options: {
      hostname: string;
      port: number;
      fetch: (req: Request) => Promise<Response>;
    }): { port: number };
  };
  Deno?: {
    env: { get(name: string): string | undefined };
    serve(
      options: { hostname: string; port: number; onListen(addr: { port: number }): void },
      handler: (req: Request) => Promise<Response>,
    ): unknown;
  };
}

function runtime(): Runtime {
  const { Bun, Deno } = globalThis as unknown as RuntimeGlobals;
  if (Bun !== undefined) {
    return {
      env: (name) => Bun.env[name],
      serve: async (fetch) => Bun.serve({ hostname: "127.0.0.1", port: 0, fetch }).port,
    };
  }
  if (Deno !== undefined) {
    return {
      env: (name) => Deno.env.get(name),
      serve: (fetch) =>
        new Promise((resolve) => {
          Deno.serve(
            { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => resolve(port) },
            fetch,
          );
        }),
    };
  }
  throw new Error("edge-server: run it on Bun or Deno");
}

function routerOptions(rt: Runtime): ConnectRouterOptions {
  switch (rt.env("EDGE_AUTH")) {
    case "connect-jwt": {
      const auth = createJwtAuth({
        publicKey: rt.env("JWT_PUBLIC_KEY") ?? "",
        algorithms: [rt.env("JWT_ALGORITHM") ?? "ES256"],
        issuer: rt.env("JWT_ISSUER") ?? "",
        audience: rt.env("JWT_AUDIENCE") ?? "",
      });
      return { interceptors: [auth.interceptor], requestGate: auth.requestGate };
    }
    case "map-gate":
      return { requestGate: leastGate(true) };
    case "refuse-gate":
      return { requestGate: refuseGate };
    default:
      return {};
  }
}

const rt = runtime();
const router = createConnectRouter(routerOptions(rt));
router.service(DemoService, {
  whoAmI(_req, ctx) {
    const sub = getClaims(ctx)?.sub;
    return { subject: typeof sub === "string" ? sub : "" };
  },
});
const routes = new Map(router.handlers.map((h) => [h.requestPath, createFetchHandler(h)]));
const port = await rt.serve(async (req) => {
  const handler = routes.get(new URL(req.url).pathname);
  return handler === undefined ? new Response(null, { status: 404 }) : handler(req);
});
console.log(`LISTENING ${port}`);
