/**
 * The compiled `prismq` binary carries the dashboard: run from an empty folder, `prismq serve` answers the
 * page and every asset exactly as built (`src/server/dashboard/assets.ts`), and in headless Chromium the page
 * renders from it alone, asking nothing of any other origin.
 *
 * @module
 */
// Not rerun on libsql: the binary is given a small environment of its own, without PRISMQ_SQLITE_ENGINE.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { baseEnv, buildBinary, type Proc, start } from "./_binary.ts";
import { makeTempDir, waitFor } from "./_helpers.ts";
import { DASHBOARD_ASSETS } from "../src/server/dashboard/assets.ts";
import { DASHBOARD_CSP } from "../src/server/dashboard/mod.ts";
import { BROWSER_WAIT_MS, chromiumMissing, launchChromium, screenshot, waitForText } from "./_browser.ts";

describe("the compiled binary serves the dashboard", () => {
  let built: { bin: string; remove: () => void } | undefined;
  let folder: { dir: string; remove: () => void } | undefined;
  let server: Proc | undefined;
  let url = "";
  before(async () => {
    built = await buildBinary();
    folder = makeTempDir("prismq-dashboard-bin-");
    server = start(built.bin, ["serve", "--listen", "127.0.0.1:0", "--db", "queue.db"], {
      cwd: folder.dir,
      env: baseEnv(),
    });
    await waitFor(
      () => /http:\/\/127\.0\.0\.1:\d+/.test(server!.stdout) || server!.child.exitCode !== null,
      60_000,
      "prismq serve to listen",
    );
    url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(server.stdout)?.[1] ?? "";
    assert.ok(url, `it printed no URL: ${server.stdout}${server.stderr}`);
  });
  after(async () => {
    if (server && server.child.exitCode === null) {
      // process.kill: Deno's child.kill reports its signal as the cause of exit, even of a graceful one.
      process.kill(server.child.pid!, "SIGTERM");
      const exit = await server.done;
      assert.equal(exit.code, 0, exit.stderr);
    }
    folder?.remove();
    built?.remove();
  });

  test("every asset is answered as built, with the CSP", async () => {
    for (const [path, asset] of Object.entries(DASHBOARD_ASSETS)) {
      const response = await fetch(url + path);
      assert.equal(response.status, 200, path);
      assert.equal(response.headers.get("content-type"), asset.type, path);
      assert.equal(response.headers.get("content-security-policy"), DASHBOARD_CSP, path);
      assert.equal(await response.text(), asset.body, path);
    }
  });

  test("in Chromium, the page renders from the binary alone", { skip: chromiumMissing() }, async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      page.setDefaultTimeout(BROWSER_WAIT_MS);
      const elsewhere: string[] = [];
      await page.route("**/*", (route) => {
        if (new URL(route.request().url()).origin === url) return route.continue();
        elsewhere.push(route.request().url());
        return route.abort();
      });
      const failed: string[] = [];
      page.on("requestfailed", (request) => failed.push(request.url()));
      await page.goto(`${url}/#/`);
      await waitForText(page, "#status", /^Updated /);
      await waitForText(page, "main h1", "Overview");
      await waitForText(page, "[data-testid=count-queued] .card-value", "0");
      await screenshot(page, "binary-overview");
      assert.deepEqual(elsewhere, [], "nothing asked of another origin");
      assert.deepEqual(failed, []);
    } finally {
      await browser.close();
    }
  });
});
