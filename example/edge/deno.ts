// The edge example on Deno: `deno run --allow-net --allow-env example/edge/deno.ts`,
// configured by the environment (JWT_PUBLIC_KEY, JWT_ALGORITHM, JWT_ISSUER,
// JWT_AUDIENCE, PORT).
import { createEdgeHandler } from "./app.js";

declare const Deno: {
  env: { get(name: string): string | undefined };
  serve(
    options: { hostname: string; port: number; onListen(addr: { port: number }): void },
    handler: (req: Request) => Promise<Response>,
  ): unknown;
};

const env = (name: string) => Deno.env.get(name);
Deno.serve(
  {
    hostname: "127.0.0.1",
    port: Number(env("PORT") ?? 0),
    onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
  },
  createEdgeHandler({
    publicKey: env("JWT_PUBLIC_KEY") ?? "",
    algorithm: env("JWT_ALGORITHM") ?? "ES256",
    issuer: env("JWT_ISSUER") ?? "",
    audience: env("JWT_AUDIENCE") ?? "",
  }),
);
