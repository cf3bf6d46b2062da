// The demo in a real browser (headless Chromium through playwright-core): the
// page at `/` end to end, and calls from another origin through CORS.
import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Code } from "@connectrpc/connect";
import * as esbuild from "esbuild";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { type Demo, demoAudience, startDemo } from "../../example/demo.js";
import { selfSignedCertificate } from "../../example/x509.js";
import { chromiumSkip, launchChromium } from "../helpers/chromium.js";
import type {
  CrossOriginCall,
  CrossOriginResult,
  globalName as GlobalName,
} from "./peers/cross-origin.js";

/** Where the screenshot of the page after a WhoAmI call is saved. */
const screenshotPath = "/tmp/demo-page.png";
/** Where the screenshot of the page after a refused replay of a DPoP proof is saved. */
const dpopScreenshotPath = "/tmp/demo-page-dpop.png";

/** A page and everything it printed to its console. */
async function openPage(context: BrowserContext, url: string) {
  const page = await context.newPage();
  const consoleLines: string[] = [];
  const errors: string[] = [];
  page.on("console", (message) => consoleLines.push(message.text()));
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(url);
  return { page, consoleLines, errors };
}

/** Clicks a call button and waits for the call to end; resolves to the status line. */
async function callFrom(page: Page, button: string): Promise<{ state: string; text: string }> {
  await page.click(`#${button}`);
  const status = await page.waitForSelector(
    '#result-status:is([data-state="ok"], [data-state="error"], [data-state="not-sent"])',
  );
  return {
    state: (await status.getAttribute("data-state")) ?? "",
    text: (await status.textContent()) ?? "",
  };
}

const text = async (page: Page, selector: string) => (await page.textContent(selector)) ?? "";

describe("the demo in Chromium", { skip: chromiumSkip(), timeout: 120_000 }, () => {
  let browser: Browser;
  let demo: Demo;
  before(async () => {
    browser = await launchChromium(); // first: under CI=true it fails without Chromium
    demo = await startDemo({ port: 0 });
  });
  after(async () => {
    await browser?.close();
    await demo?.close();
  });

  it("the page: a token from the form, WhoAmI over Connect and gRPC-Web, ListNotes, refusals", async () => {
    const context = await browser.newContext();
    try {
      const { page, consoleLines, errors } = await openPage(context, demo.url);
      await page.waitForSelector("body[data-ready=true]");
      assert.equal(await page.isVisible("#paste-form"), false, "embedded issuer: no paste field");

      // A token for alice with notes:read only.
      await page.fill("#subject", "alice");
      await page.check("#scope-notes-read");
      await page.uncheck("#scope-notes-write");
      await page.uncheck("#scope-chat");
      await page.fill("#ttl", "300");
      await page.click("#get-token");
      await page.waitForSelector("#token-view:not([hidden])");
      const token = await page.inputValue("#token");
      assert.match(token, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
      assert.match(
        await text(page, "#token-status"),
        /Token for alice, scopes notes:read, expires/,
      );

      for (const [button, protocol] of [
        ["whoami-connect", "Connect"],
        ["whoami-grpcweb", "gRPC-Web"],
      ] as const) {
        const status = await callFrom(page, button);
        assert.equal(status.state, "ok", status.text);
        assert.match(status.text, new RegExp(`^WhoAmI over ${protocol}, with the token: OK`));
        assert.equal(await text(page, "#result-subject"), "alice");
        assert.equal(await text(page, "#result-scopes"), "notes:read");
        assert.equal(await text(page, "#result-issuer"), demo.url);
        const claims = JSON.parse(await text(page, "#result-claims")) as Record<string, unknown>;
        assert.equal(claims.sub, "alice");
        assert.equal(claims.scope, "notes:read");
        assert.equal(claims.aud, demoAudience);
        assert.equal(claims.iss, demo.url);
        assert.equal((claims.exp as number) - (claims.iat as number), 300);
      }
      await page.screenshot({ path: screenshotPath, fullPage: true });

      for (const button of ["listnotes-connect", "listnotes-grpcweb"]) {
        const status = await callFrom(page, button);
        assert.equal(status.state, "ok", status.text);
        const notes = await page.locator("[data-testid=note]").allTextContents();
        assert.deepEqual(
          notes.map((note) => note.split(" ").slice(0, 6).join(" ")),
          ["note 1 of 3 for alice", "note 2 of 3 for alice", "note 3 of 3 for alice"],
        );
      }

      const ping = await callFrom(page, "ping-grpcweb");
      assert.equal(ping.state, "ok", ping.text);
      assert.equal(await text(page, "#result-subject"), "alice");

      // Refusals: no token, a tampered token (over both protocols), a missing scope.
      await page.check("#send-none");
      for (const button of ["whoami-connect", "whoami-grpcweb"]) {
        const status = await callFrom(page, button);
        assert.equal(status.state, "error", status.text);
        assert.match(status.text, /without a token: refused with permission_denied/);
        assert.equal(await text(page, "#error-code"), "permission_denied");
        assert.equal(await text(page, "#error-message"), "missing bearer token");
        assert.equal(
          await text(page, "#www-authenticate"),
          'Bearer, DPoP algs="ES256 EdDSA PS256 RS256"',
        );
      }
      assert.equal((await callFrom(page, "ping-connect")).state, "ok", "Ping is public");
      assert.match(await text(page, "#result-subject"), /^\(none/);

      await page.check("#send-tampered");
      for (const button of ["whoami-connect", "whoami-grpcweb"]) {
        assert.equal((await callFrom(page, button)).state, "error");
        assert.equal(await text(page, "#error-code"), "permission_denied");
        assert.equal(await text(page, "#www-authenticate"), 'Bearer error="invalid_token"');
      }

      // A new token without notes:read: WhoAmI passes, ListNotes is refused.
      await page.uncheck("#scope-notes-read");
      await page.check("#scope-chat");
      await page.click("#get-token");
      await page.waitForFunction(() =>
        document.getElementById("token-status")?.textContent?.includes("scopes chat"),
      );
      await page.check("#send-token");
      assert.equal((await callFrom(page, "whoami-connect")).state, "ok");
      assert.equal(await text(page, "#result-scopes"), "chat");
      for (const button of ["listnotes-connect", "listnotes-grpcweb"]) {
        const status = await callFrom(page, button);
        assert.equal(status.state, "error", status.text);
        assert.equal(await text(page, "#error-code"), "permission_denied");
        assert.equal(await text(page, "#error-message"), "insufficient scope");
        assert.equal(
          await text(page, "#www-authenticate"),
          'Bearer error="insufficient_scope", scope="notes:read"',
        );
        assert.match(await text(page, "#error-hint"), /lacks the scope notes:read/);
        assert.equal(await page.locator("#result-notes").count(), 0, "no notes shown");
      }

      // The plain-text description of the server is on the page too.
      assert.match((await page.textContent("#about")) ?? "", /demo\.v1\.DemoService\/WhoAmI/);
      assert.deepEqual(errors, []);
      const second = await page.inputValue("#token");
      for (const line of consoleLines) {
        assert.ok(!line.includes(token) && !line.includes(second), "a token went to the console");
      }
    } finally {
      await context.close();
    }
  });

  it("the page with DPoP: a non-extractable key, calls admitted, a replayed and a tampered proof refused", async () => {
    // A demo of its own, to read the reasons of its refusals from its log.
    const reasons: string[] = [];
    const bound = await startDemo({ log: (line) => reasons.push(line) });
    const context = await browser.newContext();
    try {
      const { page, consoleLines, errors } = await openPage(context, bound.url);
      const sent: { url: string; authorization: string; dpop: string | undefined }[] = [];
      page.on("request", (request) => {
        const headers = request.headers();
        if (request.url().includes("/demo.v1.DemoService/") && headers.authorization) {
          sent.push({
            url: request.url(),
            authorization: headers.authorization,
            dpop: headers.dpop,
          });
        }
      });
      await page.waitForSelector("body[data-ready=true]");
      assert.equal(await page.isVisible("#dpop-view"), false, "no key before a bound token");
      await page.check("#dpop");
      await page.click("#get-token"); // alice, notes:read
      await page.waitForSelector("#dpop-view:not([hidden])");
      const token = await page.inputValue("#token");
      assert.match(await text(page, "#token-status"), /DPoP-bound \(cnf\.jkt\)/);

      // The key: made with createDpopKeyPair(), its private key out of the page's reach.
      const key = page.locator("#dpop-key");
      assert.equal(await key.getAttribute("data-extractable"), "false");
      assert.equal(await key.getAttribute("data-export"), "refused");
      assert.match(await text(page, "#dpop-key"), /not extractable: exportKey refused/);
      const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString());
      assert.equal(claims.cnf?.jkt, await text(page, "#dpop-key .thumbprint"));

      // Sending a proof again before any call: nothing to send.
      await page.click("#replay-proof");
      await page.waitForSelector('#result-status[data-state="not-sent"]');

      // (a) Admitted over both protocols, each call with a new proof.
      for (const [button, protocol] of [
        ["whoami-connect", "Connect"],
        ["whoami-grpcweb", "gRPC-Web"],
        ["listnotes-grpcweb", "gRPC-Web"],
      ] as const) {
        const status = await callFrom(page, button);
        assert.equal(status.state, "ok", status.text);
        assert.match(status.text, new RegExp(`over ${protocol}, with the token \\(DPoP\\): OK`));
      }
      assert.equal(await page.locator("[data-testid=note]").count(), 3);
      assert.equal(sent.length, 3);
      for (const call of sent) {
        assert.equal(call.authorization, `DPoP ${token}`);
        assert.match(call.dpop ?? "", /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
      }
      assert.equal(new Set(sent.map((call) => call.dpop)).size, 3, "a new proof per call");
      const lastWhoAmI = sent.filter((call) => call.url.endsWith("/WhoAmI")).at(-1);

      // (b) The last WhoAmI proof, sent again with a plain fetch: refused as a replay.
      await page.click("#replay-proof");
      let status = await page.waitForSelector(
        '#result-status:is([data-state="ok"], [data-state="error"])',
      );
      assert.equal(
        await status.getAttribute("data-state"),
        "error",
        `${await status.textContent()}`,
      );
      assert.match(
        (await status.textContent()) ?? "",
        /proof sent again: refused with permission_denied/,
      );
      assert.equal(await text(page, "#error-code"), "permission_denied");
      assert.equal(await text(page, "#error-message"), "invalid DPoP proof");
      assert.equal(
        await text(page, "#www-authenticate"),
        'DPoP error="invalid_dpop_proof", algs="ES256 EdDSA PS256 RS256"',
      );
      assert.match(await text(page, "#error-hint"), /used before \(a replay\)/);
      assert.equal(sent.at(-1)?.dpop, lastWhoAmI?.dpop, "the very same proof");
      assert.match(reasons.at(-1) ?? "", /WhoAmI \(connect\): ERR_DPOP_REPLAYED$/);
      await page.screenshot({ path: dpopScreenshotPath, fullPage: true });

      // (c) A new proof with one character of its payload changed: refused, its signature broken.
      await page.click("#tamper-proof");
      status = await page.waitForSelector(
        '#result-status:is([data-state="ok"], [data-state="error"]):text("tampered proof")',
      );
      assert.equal(
        await status.getAttribute("data-state"),
        "error",
        `${await status.textContent()}`,
      );
      assert.equal(await text(page, "#error-code"), "permission_denied");
      assert.equal(
        await text(page, "#www-authenticate"),
        'DPoP error="invalid_dpop_proof", algs="ES256 EdDSA PS256 RS256"',
      );
      assert.match(reasons.at(-1) ?? "", /WhoAmI \(connect\): ERR_DPOP_SIGNATURE_INVALID$/);
      const [header, payload, signature] = (sent.at(-1)?.dpop ?? "").split(".");
      const tampered = JSON.parse(Buffer.from(payload ?? "", "base64url").toString());
      assert.equal(typeof tampered.jti, "string");
      assert.ok(header && signature, "header and signature kept");

      // The bound token as a bearer token: refused.
      const asBearer = await page.evaluate(async (token) => {
        const res = await fetch("/demo.v1.DemoService/WhoAmI", {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: "{}",
        });
        return [res.status, res.headers.get("www-authenticate")];
      }, token);
      assert.deepEqual(asBearer, [
        403,
        'DPoP error="invalid_token", algs="ES256 EdDSA PS256 RS256"',
      ]);

      assert.deepEqual(errors, []);
      for (const line of [...consoleLines, ...reasons]) {
        assert.ok(!line.includes(token), "a token went to the console or the log");
      }
    } finally {
      await context.close();
      await bound.close();
    }
  });

  it("the page with an external issuer: paste a token instead of minting one", async () => {
    // The first demo's embedded issuer serves as the external issuer of a second one.
    const external = await startDemo({
      external: {
        jwksUrl: `${demo.url}/.well-known/jwks.json`,
        issuer: demo.url,
        audience: demoAudience,
      },
    });
    const context = await browser.newContext();
    try {
      const { page, errors } = await openPage(context, external.url);
      await page.waitForSelector("body[data-ready=true]");
      assert.equal(await page.isVisible("#token-form"), false, "no token form");
      assert.equal(await page.isVisible("#paste-form"), true);
      await page.fill("#token-input", "not a token");
      await page.click("#use-token");
      assert.match(await text(page, "#token-error"), /not a JWT/);

      const token = await demo.mintToken({ sub: "pasted", scope: "notes:read" });
      await page.fill("#token-input", `  Bearer ${token}\n`);
      await page.click("#use-token");
      await page.waitForSelector("#token-view:not([hidden])");
      assert.equal(await page.isVisible("#token-error"), false);
      const status = await callFrom(page, "whoami-grpcweb");
      assert.equal(status.state, "ok", status.text);
      assert.equal(await text(page, "#result-subject"), "pasted");
      assert.equal(await text(page, "#result-issuer"), demo.url);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
      await external.close();
    }
  });

  it("over TLS: the page talks HTTP/2 to the server (ALPN h2)", async () => {
    const secure = await startDemo({ tls: selfSignedCertificate() });
    // The certificate is self-signed: this browser context accepts it.
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      const { page, errors } = await openPage(context, secure.url);
      await page.waitForSelector("body[data-ready=true]");
      await page.click("#get-token"); // the defaults: alice, notes:read
      await page.waitForSelector("#token-view:not([hidden])");
      for (const button of ["whoami-connect", "whoami-grpcweb", "listnotes-grpcweb"]) {
        const status = await callFrom(page, button);
        assert.equal(status.state, "ok", status.text);
      }
      assert.equal(await page.locator("[data-testid=note]").count(), 3);
      const protocols = await page.evaluate(() =>
        performance
          .getEntriesByType("resource")
          .map((entry) => [entry.name, (entry as PerformanceResourceTiming).nextHopProtocol]),
      );
      const rpcs = protocols.filter(([name]) => name?.includes("/demo.v1.DemoService/"));
      assert.equal(rpcs.length, 3, JSON.stringify(protocols));
      assert.ok(
        rpcs.every(([, protocol]) => protocol === "h2"),
        JSON.stringify(rpcs),
      );
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
      await secure.close();
    }
  });

  describe("from another origin (CORS)", () => {
    let site: http.Server;
    let siteUrl: string;
    before(async () => {
      // The page of another origin: same host, another port.
      const bundle = await esbuild.build({
        entryPoints: [fileURLToPath(new URL("./peers/cross-origin.ts", import.meta.url))],
        bundle: true,
        write: false,
        format: "esm",
        platform: "browser",
        logLevel: "silent",
      });
      const script = bundle.outputFiles[0]?.contents ?? new Uint8Array();
      site = http.createServer((req, res) => {
        if (req.url === "/cross-origin.js") {
          res.writeHead(200, { "content-type": "text/javascript" }).end(script);
        } else if (req.url === "/") {
          res
            .writeHead(200, { "content-type": "text/html" })
            .end(
              '<!doctype html><link rel="icon" href="data:,"><script type="module" src="/cross-origin.js"></script>',
            );
        } else {
          res.writeHead(404).end();
        }
      });
      await new Promise<void>((resolve) => site.listen(0, "127.0.0.1", resolve));
      siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    });
    after(() => new Promise<void>((resolve) => (site ? site.close(() => resolve()) : resolve())));

    /** Opens the other origin's page; records the CORS preflights Chromium sends. */
    async function openSite(context: BrowserContext) {
      const { page, consoleLines } = await openPage(context, siteUrl);
      const preflights: { url: string; requestHeaders: string }[] = [];
      // Preflights are made by the browser's network service, not by the page:
      // page.on("request") never sees them, the DevTools protocol does.
      const cdp = await context.newCDPSession(page);
      await cdp.send("Network.enable");
      cdp.on("Network.requestWillBeSent", ({ request }) => {
        if (request.method === "OPTIONS") {
          const headers = Object.entries(request.headers);
          const asked = headers.find(
            ([name]) => name.toLowerCase() === "access-control-request-headers",
          );
          preflights.push({ url: request.url, requestHeaders: String(asked?.[1] ?? "") });
        }
      });
      const name: typeof GlobalName = "crossOriginCall";
      await page.waitForFunction((name) => name in globalThis, name);
      const call = (args: Omit<CrossOriginCall, "baseUrl">, baseUrl = demo.url) =>
        page.evaluate(
          ([name, call]) =>
            (
              globalThis as unknown as Record<
                string,
                (c: CrossOriginCall) => Promise<CrossOriginResult>
              >
            )[name]?.(call),
          [name, { ...args, baseUrl }] as const,
        );
      return { page, consoleLines, preflights, call };
    }

    it("Connect and gRPC-Web with Authorization: preflight allowed, WWW-Authenticate exposed", async () => {
      const context = await browser.newContext();
      try {
        const { preflights, call } = await openSite(context);
        const token = await demo.mintToken({ sub: "bob", scope: "notes:read" });
        const withoutScope = await demo.mintToken({ sub: "bob", scope: "chat" });
        for (const protocol of ["connect", "grpc-web"] as const) {
          assert.deepEqual(await call({ protocol, method: "WhoAmI", token }), {
            ok: true,
            subject: "bob",
            notes: 0,
          });
          assert.deepEqual(await call({ protocol, method: "ListNotes", token }), {
            ok: true,
            subject: "bob",
            notes: 2,
          });
          // The challenge of a refusal is readable only because CORS exposes it.
          assert.deepEqual(await call({ protocol, method: "WhoAmI", token: undefined }), {
            ok: false,
            code: Code.PermissionDenied,
            message: "missing bearer token",
            wwwAuthenticate: 'Bearer, DPoP algs="ES256 EdDSA PS256 RS256"',
          });
          assert.deepEqual(await call({ protocol, method: "ListNotes", token: withoutScope }), {
            ok: false,
            code: Code.PermissionDenied,
            message: "insufficient scope",
            wwwAuthenticate: 'Bearer error="insufficient_scope", scope="notes:read"',
          });
        }
        const asked = preflights.filter((p) =>
          p.url.startsWith(`${demo.url}/demo.v1.DemoService/`),
        );
        assert.ok(asked.length > 0, "Chromium sent no preflight");
        assert.ok(
          asked.some((p) => p.requestHeaders.toLowerCase().split(",").includes("authorization")),
          `no preflight asked for Authorization: ${JSON.stringify(asked)}`,
        );
      } finally {
        await context.close();
      }
    });

    it("an origin the server does not allow: the browser blocks the call", async () => {
      const strict = await startDemo({ corsOrigins: ["http://some-other-origin"] });
      const context = await browser.newContext();
      try {
        const { consoleLines, preflights, call } = await openSite(context);
        const token = await strict.mintToken({ sub: "bob", scope: "notes:read" });
        for (const protocol of ["connect", "grpc-web"] as const) {
          const result = await call({ protocol, method: "WhoAmI", token }, strict.url);
          // fetch() fails as a whole: no status, no headers reach the page.
          assert.deepEqual(result, {
            ok: false,
            code: Code.Unknown,
            message: "Failed to fetch",
            wwwAuthenticate: null,
          });
        }
        assert.ok(
          preflights.some((p) => p.url.startsWith(strict.url)),
          "no preflight",
        );
        assert.ok(
          consoleLines.some((line) => line.includes("has been blocked by CORS policy")),
          consoleLines.join("\n"),
        );
      } finally {
        await context.close();
        await strict.close();
      }
    });
  });
});
