// The demo page's layout in a real browser (headless Chromium through
// playwright-core), on a phone held upright and on a desktop: nothing sticks
// out sideways, code words stay whole, the whole token shows, a call's result
// scrolls into view, and every call button says which method and protocol.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { type Demo, startDemo } from "../../example/demo.js";
import { chromiumSkip, launchChromium } from "../helpers/chromium.js";

const viewports = [
  { width: 390, height: 844 },
  { width: 1280, height: 800 },
] as const;

const methods = ["Ping", "WhoAmI", "ListNotes"] as const;
const protocols = ["Connect", "gRPC-Web"] as const;

/** Where the page after a refused call is saved, for each width. */
const screenshotPath = (width: number) => `/tmp/demo-page-${width}.png`;

/**
 * overflowing lists the elements that stick out sideways, of the window or
 * of the card (`section`) they are in, and the page itself when it scrolls
 * sideways. Half a pixel is allowed for fractional layout widths.
 */
function overflowing(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const root = document.documentElement;
    const found: string[] = [];
    if (root.scrollWidth > root.clientWidth) {
      found.push(`the page is ${root.scrollWidth}px wide in a ${root.clientWidth}px window`);
    }
    for (const element of document.body.querySelectorAll("*")) {
      const box = element.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) {
        continue; // not rendered
      }
      const card = element.closest("section")?.getBoundingClientRect();
      const left = Math.max(0, card?.left ?? 0);
      const right = Math.min(root.clientWidth, card?.right ?? root.clientWidth);
      if (box.left < left - 0.5 || box.right > right + 0.5) {
        const name = `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ""}`;
        const text = (element.textContent ?? "").trim().slice(0, 40);
        found.push(`${name} "${text}" spans ${box.left}..${box.right}, not ${left}..${right}`);
      }
    }
    return found;
  });
}

/**
 * linesOf counts, for each occurrence of `word` in the result area, the lines
 * it is laid out on: 2 when it is broken mid-word.
 */
function linesOf(page: Page, word: string): Promise<number[]> {
  return page.evaluate((word) => {
    const counts: number[] = [];
    const result = document.getElementById("result") ?? document.body;
    const walker = document.createTreeWalker(result, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
      const at = (node.textContent ?? "").indexOf(word);
      if (at >= 0) {
        const range = document.createRange();
        range.setStart(node, at);
        range.setEnd(node, at + word.length);
        counts.push(new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size);
      }
    }
    return counts;
  }, word);
}

/** The accessible names of the buttons in `selector`, as Chromium computes them. */
async function buttonNames(page: Page, selector: string): Promise<string[]> {
  const cdp = await page.context().newCDPSession(page);
  try {
    const { result } = await cdp.send("Runtime.evaluate", {
      expression: `document.querySelector(${JSON.stringify(selector)})`,
    });
    assert.ok(result.objectId, `no ${selector} in the page`);
    const { nodes } = await cdp.send("Accessibility.queryAXTree", {
      objectId: result.objectId,
      role: "button",
    });
    return nodes.filter((node) => !node.ignored).map((node) => String(node.name?.value ?? ""));
  } finally {
    await cdp.detach();
  }
}

/** Where a box is in the window, and the window's height. */
function placeOf(page: Page, selector: string) {
  return page.$eval(selector, (element) => {
    const { top, bottom } = element.getBoundingClientRect();
    return { top, bottom, height: bottom - top, window: innerHeight };
  });
}

/** Scrolls to the top, chooses what to send, makes a call and waits for its end. */
async function callFrom(page: Page, send: "token" | "none", button: string): Promise<void> {
  await page.evaluate(() => scrollTo(0, 0));
  await page.check(`#send-${send}`);
  await page.click(`#${button}`);
  await page.waitForSelector('#result-status:is([data-state="ok"], [data-state="error"])');
}

describe("the demo page's layout in Chromium", { skip: chromiumSkip(), timeout: 120_000 }, () => {
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

  for (const viewport of viewports) {
    describe(`at ${viewport.width}×${viewport.height}`, () => {
      let context: BrowserContext;
      let page: Page;
      before(async () => {
        // Reduced motion: the result scrolls into view at once, not smoothly.
        context = await browser.newContext({ viewport, reducedMotion: "reduce" });
        page = await context.newPage();
        await page.goto(demo.url);
        await page.waitForSelector("body[data-ready=true]");
        await page.click("#get-token"); // alice, notes:read
        await page.waitForSelector("#token-view:not([hidden])");
      });
      after(() => context?.close());

      it("nothing sticks out sideways", async () => {
        assert.deepEqual(await overflowing(page), []);
      });

      it("every call button is named with its method and protocol, every button uniquely", async () => {
        const names = await buttonNames(page, "body");
        assert.deepEqual(names, [...new Set(names)], "two buttons with one name");
        const calls = await buttonNames(page, "section:has(#call-heading)");
        const pairs = calls.map((name) => {
          const method = methods.filter((m) => name.includes(m));
          const protocol = protocols.filter((p) => name.includes(p));
          assert.equal(method.length, 1, `"${name}" names no method or more than one`);
          assert.equal(protocol.length, 1, `"${name}" names no protocol or more than one`);
          return `${method[0]} ${protocol[0]}`;
        });
        const expected = methods.flatMap((m) => protocols.map((p) => `${m} ${p}`));
        assert.deepEqual(pairs.toSorted(), expected.toSorted());
        for (const name of calls) {
          // Playwright finds each by that name, and the name contains what the button shows.
          const button = page.getByRole("button", { name, exact: true });
          assert.equal(await button.count(), 1, name);
          const shown = ((await button.textContent()) ?? "").trim();
          assert.ok(shown !== "" && name.includes(shown), `"${name}" hides its text "${shown}"`);
        }
      });

      it("the token box shows the whole token", async () => {
        const box = await page.$eval("#token", (t) => ({
          scrollHeight: t.scrollHeight,
          clientHeight: t.clientHeight,
        }));
        assert.ok(
          box.scrollHeight <= box.clientHeight,
          `the last line is cut: ${JSON.stringify(box)}`,
        );
      });

      it("after a call its result is scrolled into view, and nothing sticks out sideways", async () => {
        for (const [send, button] of [
          ["token", "whoami-grpcweb"],
          ["token", "listnotes-connect"],
          ["none", "whoami-connect"],
        ] as const) {
          await callFrom(page, send, button);
          // The status line always; the whole result when it fits in the window (+1 px for
          // fractional layout).
          const status = await placeOf(page, "#result-status");
          assert.ok(
            status.top >= 0 && status.bottom <= status.window + 1,
            `${button}: ${JSON.stringify(status)}`,
          );
          const result = await placeOf(page, "#result");
          if (result.height <= result.window) {
            assert.ok(
              result.top >= 0 && result.bottom <= result.window + 1,
              `${button}: ${JSON.stringify(result)}`,
            );
          }
          assert.deepEqual(await overflowing(page), [], button);
        }
      });

      it("a code such as permission_denied stays on one line", async () => {
        await callFrom(page, "none", "whoami-grpcweb");
        assert.equal(await page.textContent("#error-code"), "permission_denied");
        const lines = await linesOf(page, "permission_denied");
        assert.ok(lines.length >= 2, "in the status line and as the code");
        assert.deepEqual(
          lines,
          lines.map(() => 1),
          "broken across lines",
        );
        await page.screenshot({ path: screenshotPath(viewport.width), fullPage: true });
      });

      it("with a DPoP-bound token: the key and its buttons fit, a refused replay shows in view", async () => {
        await page.evaluate(() => scrollTo(0, 0));
        await page.check("#dpop");
        await page.click("#get-token");
        await page.waitForSelector("#dpop-view:not([hidden])");
        assert.deepEqual(await overflowing(page), []);
        const names = await buttonNames(page, "body");
        assert.deepEqual(names, [...new Set(names)], "two buttons with one name");
        assert.ok(names.includes("Send WhoAmI's last proof again"), names.join());
        await callFrom(page, "token", "whoami-connect");
        await page.evaluate(() => scrollTo(0, 0));
        await page.click("#replay-proof");
        await page.waitForSelector('#result-status[data-state="error"]');
        const status = await placeOf(page, "#result-status");
        assert.ok(status.top >= 0 && status.bottom <= status.window + 1, JSON.stringify(status));
        assert.deepEqual(await overflowing(page), []);
      });
    });
  }

  it("the token box grows when the window narrows", async () => {
    const context = await browser.newContext({ viewport: viewports[1] });
    try {
      const page = await context.newPage();
      await page.goto(demo.url);
      await page.waitForSelector("body[data-ready=true]");
      await page.click("#get-token");
      await page.waitForSelector("#token-view:not([hidden])");
      await page.setViewportSize(viewports[0]);
      // Resize events are dispatched before the next frame's callbacks.
      await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(resolve)));
      const box = await page.$eval("#token", (t) => ({
        scrollHeight: t.scrollHeight,
        clientHeight: t.clientHeight,
      }));
      assert.ok(
        box.scrollHeight <= box.clientHeight,
        `the last line is cut: ${JSON.stringify(box)}`,
      );
    } finally {
      await context.close();
    }
  });
});
