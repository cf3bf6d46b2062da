// The edge example on Deno: `deno run --allow-net --allow-env example/edge/deno.ts`,
// configured by the environment (JWT_PUBLIC_KEY or JWT_JWKS_URL, JWT_ALGORITHM,
// JWT_ISSUER, JWT_AUDIENCE, PORT).
import { createEdgeHandler, edgeConfig } from "./app.js";

declare const Deno: {
  env: { get(name: string): string | undefined };
  serve(
    options: { hostname: string; port: number; onListen(addr: { port: number }): void },
    handler: (req: Request) => Promise<Response>,
  ): unknown;
};

Deno.serve(
  {
    hostname: "127.0.0.1",
    port: Number(Deno.env.get("PORT") ?? 0),
    onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
  },
  createEdgeHandler(edgeConfig((name) => Deno.env.get(name))),
);
