/**
 * What the dashboard's browser tests share: headless Chromium from Debian's `chromium` package, driven by
 * playwright-core (which downloads no browser); a server on 127.0.0.1 with a free port; a folder for
 * screenshots, printed once; and waits with deadlines rather than sleeps.
 */
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { type FetchHandler, listenHttp } from "../src/cli/http_listen.ts";

/** Where Debian's `chromium` package puts the browser (`.ci/run` installs it). */
export const CHROMIUM = "/usr/bin/chromium";

/** How long any one wait in a browser test may take: far beyond what a loaded 2-core machine needs. */
export const BROWSER_WAIT_MS = 30_000;

/** Why the browser tests cannot run here, or undefined when they can; printed when they are skipped. */
export function chromiumMissing(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const reason = `no browser at ${CHROMIUM}: install Debian's chromium package (apt-get install chromium)`;
  console.log(`Skipping the dashboard's browser tests: ${reason}.`);
  return reason;
}

/** Starts headless Chromium. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
}

let shots: string | undefined;

/** Saves a screenshot of the whole page as `<name>.png` in this run's folder (printed the first time). */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (!shots) {
    shots = mkdtempSync(join(tmpdir(), "prismq-dashboard-"));
    console.log(`Dashboard screenshots: ${shots}`);
  }
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

/** A server of `handler` on 127.0.0.1, on a port the system picks, as `prismq serve` listens. */
export interface LoopbackServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `handler` on 127.0.0.1 on a free port. */
export async function serveOnLoopback(handler: FetchHandler): Promise<LoopbackServer> {
  const listener = await listenHttp(handler, "127.0.0.1", 0);
  return { url: `http://127.0.0.1:${listener.port}`, close: () => listener.close() };
}

/** The text of `selector` once it equals `expected` (fails with what it was after the deadline). */
export async function waitForText(page: Page, selector: string, expected: string | RegExp): Promise<void> {
  const locator = page.locator(selector).first();
  const deadline = Date.now() + BROWSER_WAIT_MS;
  let seen: string | null = null;
  while (Date.now() < deadline) {
    seen = await locator.textContent({ timeout: BROWSER_WAIT_MS }).catch(() => null);
    if (seen !== null && (typeof expected === "string" ? seen.trim() === expected : expected.test(seen))) {
      return;
    }
    await page.waitForTimeout(50);
  }
  throw new Error(
    `${selector} did not show ${expected} within ${BROWSER_WAIT_MS} ms; it showed ${JSON.stringify(seen)}.`,
  );
}
