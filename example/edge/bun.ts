// The edge example on Bun: `bun run example/edge/bun.ts`, configured by the
// environment (JWT_PUBLIC_KEY, JWT_ALGORITHM, JWT_ISSUER, JWT_AUDIENCE, PORT).
import { createEdgeHandler } from "./app.js";

declare const Bun: {
  env: Record<string, string | undefined>;
  serve(options: { hostname: string; port: number; fetch: (req: Request) => Promise<Response> }): {
    port: number;
  };
};

const env = Bun.env;
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(env.PORT ?? 0),
  fetch: createEdgeHandler({
    publicKey: env.JWT_PUBLIC_KEY ?? "",
    algorithm: env.JWT_ALGORITHM ?? "ES256",
    issuer: env.JWT_ISSUER ?? "",
    audience: env.JWT_AUDIENCE ?? "",
  }),
});
console.log(`listening on http://127.0.0.1:${server.port}`);
