// The edge example on Bun: `bun run example/edge/bun.ts`, configured by the
// environment (JWT_PUBLIC_KEY or JWT_JWKS_URL, JWT_ALGORITHM, JWT_ISSUER,
// JWT_AUDIENCE, PORT).
import { createEdgeHandler, edgeConfig } from "./app.js";

declare const Bun: {
  env: Record<string, string | undefined>;
  serve(options: { hostname: string; port: number; fetch: (req: Request) => Promise<Response> }): {
    port: number;
  };
};

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(Bun.env.PORT ?? 0),
  fetch: createEdgeHandler(edgeConfig((name) => Bun.env[name])),
});
console.log(`listening on http://127.0.0.1:${server.port}`);
