import { accessSync, constants } from "node:fs";
import { type Browser, chromium } from "playwright-core";

/**
 * Where Debian's `chromium` package puts the browser (`CHROMIUM_PATH` names
 * another). The tests never download a browser.
 */
export const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/**
 * chromiumSkip is the reason to skip the browser tests, for `describe(name,
 * { skip }, ...)`: Chromium is not installed. Under `CI=true` it is
 * `undefined` even then, so the tests run and fail in {@link launchChromium}:
 * CI must not pass by skipping them.
 */
export function chromiumSkip(): string | undefined {
  if (isInstalled() || process.env.CI === "true") {
    return undefined;
  }
  return "chromium not installed: apt-get install chromium";
}

/**
 * launchChromium starts headless Chromium with a fresh temporary profile and
 * nothing that talks to the internet on its own.
 */
export async function launchChromium(): Promise<Browser> {
  if (!isInstalled()) {
    throw new Error(
      `chromium not installed at ${chromiumPath} (CI=true: the browser tests must run): apt-get install chromium`,
    );
  }
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox",
      "--headless",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

function isInstalled(): boolean {
  try {
    accessSync(chromiumPath, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
