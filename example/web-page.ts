import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import type { ExternalIssuer } from "./config.js";
import { homePage } from "./home-page.js";
import { sendBody, sendJson, sendText } from "./http-io.js";
import type { Endpoint } from "./issuer-endpoints.js";

/** The paths of the demo web page and the plain-text description of the server. */
export const webPaths = {
  page: "/",
  script: "/app.js",
  style: "/style.css",
  about: "/about",
} as const;

const root = fileURLToPath(new URL("..", import.meta.url));
const webDir = fileURLToPath(new URL("./web/", import.meta.url));

/** The bundled script and style sheet, and the page that loads them. */
interface WebApp {
  readonly html: string;
  readonly script: Uint8Array;
  readonly style: Uint8Array;
}

let built: Promise<WebApp> | undefined;

/**
 * buildWebApp bundles `example/web/app.ts` (with connect-web, the generated
 * DemoService and connect-jwt's client) and `style.css` with esbuild, in
 * memory: nothing is written to disk. The bundle does not depend on how the
 * server is configured, so it is built once per process; a failed build is
 * retried on the next call.
 */
export function buildWebApp(): Promise<WebApp> {
  built ??= (async () => {
    const [html, result] = await Promise.all([
      readFile(`${webDir}index.html`, "utf8"),
      esbuild.build({
        absWorkingDir: root,
        entryPoints: [`${webDir}app.ts`, `${webDir}style.css`],
        outdir: `${webDir}dist`, // names the outputs; write: false keeps them in memory
        write: false,
        bundle: true,
        format: "esm",
        platform: "browser",
        target: "es2022",
        charset: "utf8",
        logLevel: "silent",
      }),
    ]);
    const output = (name: string) => {
      const file = result.outputFiles.find((f) => f.path.endsWith(`/${name}`));
      if (file === undefined) {
        throw new Error(`esbuild produced no ${name}`);
      }
      return file.contents;
    };
    return { html, script: output("app.js"), style: output("style.css") };
  })();
  built.catch(() => {
    built = undefined;
  });
  return built;
}

// The page runs only its own script and talks only to this server; it renders
// server strings as text, and CSP makes sure nothing else could run.
const pageHeaders = {
  "cache-control": "no-cache",
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "referrer-policy": "no-referrer",
};

/**
 * webPage serves the demo web page at `/` (the script at `/app.js`, the style
 * sheet at `/style.css`) and the plain-text description of the server at
 * `/about`. With an external issuer the page asks for a token to paste
 * instead of minting one.
 */
export async function webPage(options: {
  url: string;
  external: ExternalIssuer | undefined;
}): Promise<Endpoint> {
  const app = await buildWebApp();
  const html = app.html.replace(
    'data-issuer="embedded"',
    `data-issuer="${options.external === undefined ? "embedded" : "external"}"`,
  );
  const about = homePage(options.url, options.external);
  const assets = new Map<string, [contentType: string, body: string | Uint8Array]>([
    [webPaths.page, ["text/html; charset=utf-8", html]],
    [webPaths.script, ["text/javascript; charset=utf-8", app.script]],
    [webPaths.style, ["text/css; charset=utf-8", app.style]],
  ]);
  return (req, res, path) => {
    const asset = assets.get(path);
    if (asset === undefined && path !== webPaths.about) {
      return false;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendJson(res, 405, { error: "use GET" }, { allow: "GET, HEAD" });
    } else if (asset === undefined) {
      sendText(res, 200, about);
    } else {
      sendBody(res, 200, asset[0], asset[1], pageHeaders);
    }
    return true;
  };
}
