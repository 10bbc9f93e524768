/**
 * The dashboard in a real browser: headless Chromium (Debian's `chromium`) driven by playwright-core, against
 * a real server on 127.0.0.1 over a real database (a file, and a PostgreSQL server), with a real worker in this
 * process. It loads each page, filters the list and pages through it, opens a task, retries a failed one and
 * sees it run to completed, retries the failed ones in bulk, pauses and resumes a queue, and checks that
 * payloads, errors and logs holding markup stay text on every page — in a browser context that ignores the
 * CSP, so that markup the page wrongly parsed would run. Screenshots go to a temporary folder, printed.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { join } from "node:path";
import { Queue, QueueDatabase } from "../mod.ts";
import { PROCESS_DATABASES } from "./_databases.ts";
import { makeTempDir } from "./_helpers.ts";
import {
  BROWSER_WAIT_MS,
  chromiumMissing,
  launchChromium,
  screenshot,
  serveOnLoopback,
  waitForText,
} from "./_browser.ts";
import { assertInert, type Fixture, open, start, waitForRows } from "./_dashboard_fixture.ts";
import { createHttpHandler } from "../src/server/app.ts";
import { dashboardResponse } from "../src/server/dashboard/mod.ts";

const browserSkip = chromiumMissing();

let browser: Browser | undefined;

describe("the dashboard in Chromium", { skip: browserSkip }, () => {
  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });

  test("a rare filter: the list follows next past the server's bounded scans until the page fills", async () => {
    const { dir, remove } = makeTempDir("prismq-dashboard-");
    const db = new QueueDatabase(join(dir, "queue.db"));
    await db.initializeSchema();
    const queue = new Queue(db);
    const server = await serveOnLoopback(createHttpHandler(db, { dashboard: dashboardResponse }));
    const context = await browser!.newContext();
    try {
      const old = await queue.enqueueManyIds([1, 2, 3].map((n) => ({ type: "report", payload: { n } })));
      // More newer tasks than one request of the server looks at (100,000 ids): its first answer is empty.
      for (let i = 0; i < 11; i++) {
        await queue.enqueueManyIds(Array.from({ length: 10_000 }, () => ({ type: "noop", payload: {} })));
      }
      const first = await (await fetch(`${server.url}/api/tasks?type=report&limit=25`)).json();
      assert.equal(first.tasks.length, 0, "the server's first answer is empty, with a next");
      assert.ok(first.next);
      const page = await context.newPage();
      page.setDefaultTimeout(BROWSER_WAIT_MS);
      await page.goto(`${server.url}/#/tasks?type=report&limit=25`);
      await waitForText(page, "#status", /^Updated /);
      const ids = await page.locator("[data-testid=task-list] tbody tr td:first-child").allTextContents();
      assert.deepEqual(ids, old.map((t) => `#${t.id}`).reverse());
      assert.ok(await page.getByRole("button", { name: "Older →" }).isDisabled());
    } finally {
      await context.close();
      await server.close();
      await db.close();
      remove();
    }
  });

  for (const database of PROCESS_DATABASES) {
    describe(`over ${database.name}`, { skip: database.skip }, () => {
      let fx: Fixture;
      before(async () => {
        fx = await start(database, browser!);
      });
      after(async () => {
        await fx?.close();
      });

      test("the overview shows counts per status, the queues, the chart or its no-data state, and the worker", async () => {
        await open(fx, "#/");
        const stats = await fx.queue.stats();
        for (const status of ["completed", "failed"] as const) {
          await waitForText(
            fx.page,
            `[data-testid=count-${status}] .card-value`,
            String(stats.counts[status]),
          );
        }
        await waitForText(fx.page, "[data-testid=live-workers] .card-value", "1");
        await fx.page.getByRole("cell", { name: "dashboard-worker" }).waitFor();
        await fx.page.getByRole("link", { name: "bulk", exact: true }).waitFor();
        const throughput = await fetch(`${fx.server.url}/api/throughput?minutes=60`);
        await throughput.body?.cancel();
        await fx.page.locator(
          throughput.status === 404
            ? "[data-testid=throughput-no-data]"
            : "[data-testid=throughput-chart] svg",
        ).waitFor();
        await screenshot(fx.page, `${database.kind}-overview`);
      });

      test("the tasks list filters by status, type, queue, payload field and time, and pages", async () => {
        const page = fx.page;
        await open(fx, "#/tasks");
        await page.selectOption("#filter-status", "failed");
        await page.click("[data-testid=filters] button[type=submit]");
        await waitForText(page, "[data-testid=task-list] tbody", /failed/);
        const statuses = await page.locator("[data-testid=task-list] tbody .badge").allTextContents();
        assert.deepEqual(statuses, ["failed", "failed", "failed"]);
        assert.match(page.url(), /#\/tasks\?status=failed$/);

        await page.selectOption("#filter-status", "");
        await page.fill("#filter-type", "report");
        await page.click("[data-testid=filters] button[type=submit]");
        await waitForRows(page, 3);
        await page.fill("#filter-type", "");
        await page.fill("#filter-payloadField", "account");
        await page.fill("#filter-payloadValue", "42");
        await page.click("[data-testid=filters] button[type=submit]");
        await waitForRows(page, 1);
        await page.getByRole("link", { name: `#${fx.ids.charge42}`, exact: true }).waitFor();

        await page.fill("#filter-payloadField", "");
        await page.fill("#filter-payloadValue", "");
        await page.fill("#filter-created-after", "2099-01-01T00:00");
        await page.click("[data-testid=filters] button[type=submit]");
        await page.getByText("No task matches these filters.").waitFor();
        await page.fill("#filter-created-after", "");

        await page.fill("#filter-queue", "bulk");
        await page.selectOption("#filter-limit", "25");
        await page.click("[data-testid=filters] button[type=submit]");
        await waitForRows(page, 25);
        await screenshot(page, `${database.kind}-tasks`);
        await page.getByRole("button", { name: "Older →" }).click();
        await waitForRows(page, 5);
        await waitForText(page, ".pager span", "page 2");
        assert.ok(await page.getByRole("button", { name: "Older →" }).isDisabled());
        await page.getByRole("button", { name: "← Newer" }).click();
        await waitForRows(page, 25);
      });

      test("a task's page shows the tasks it depends on and those depending on it, with their statuses", async () => {
        const page = fx.page;
        await open(fx, `#/tasks/${fx.ids.fanIn}`);
        await waitForText(
          page,
          "[data-testid=task-dependencies]",
          new RegExp(`#${fx.ids.report0} +completed`),
        );
        await waitForText(
          page,
          "[data-testid=task-dependencies]",
          new RegExp(`#${fx.ids.report1} +completed`),
        );
        await open(fx, `#/tasks/${fx.ids.report0}`);
        await waitForText(
          page,
          "[data-testid=task-dependents]",
          new RegExp(`#${fx.ids.fanIn} +completed +mail`),
        );
        assert.equal(await page.locator("[data-testid=task-dependencies]").count(), 0);
      });

      test("a task's page shows its payload, progress, result and logs", async () => {
        const page = fx.page;
        await open(fx, "#/tasks?type=report");
        await page.getByRole("link", { name: `#${fx.ids.report2}`, exact: true }).click();
        await waitForText(page, "h1", new RegExp(`Task #${fx.ids.report2} report completed`));
        await waitForText(page, "[data-testid=task-payload] pre", /"pages": 8/);
        await waitForText(page, "[data-testid=task-progress] pre", /"done": 8/);
        await waitForText(page, "[data-testid=task-result] pre", /reports\/7\.pdf/);
        await waitForText(page, "[data-testid=task-logs] tbody", /rendered 8 pages/);
        await screenshot(page, `${database.kind}-task`);
      });

      test("a failed task retried from its page runs to completed, shown without a reload", async () => {
        const page = fx.page;
        await open(fx, `#/tasks/${fx.ids.charge42}`);
        await waitForText(page, "[data-testid=task-error] pre", /card declined for 42/);
        fx.charges.failing = false;
        await page.getByTestId("retry").click();
        await waitForText(page, "#notice", `Task #${fx.ids.charge42} is queued again.`);
        await waitForText(page, "h1 .badge", "completed");
        await waitForText(page, "[data-testid=task-result] pre", /"charged": 42/);
        assert.equal((await fx.queue.get(fx.ids.charge42))?.status, "completed");
      });

      test("retrying the failed tasks in bulk queues them all, after a second click, and they complete", async () => {
        const page = fx.page;
        fx.charges.failing = false;
        await open(fx, "#/tasks?status=failed");
        await waitForRows(page, 2);
        const button = page.getByTestId("retry-all-failed");
        await button.click();
        await waitForText(page, "[data-testid=retry-all-failed]", /Click again/);
        assert.equal((await fx.queue.get(fx.ids.charge43))?.status, "failed", "one click does nothing");
        await button.click();
        await waitForText(page, "#notice", "Queued 2 failed tasks again.");
        for (const id of [fx.ids.charge43, fx.ids.hostileCharge]) {
          assert.equal((await fx.queue.waitFor(id, { timeoutMs: BROWSER_WAIT_MS })).status, "completed");
        }
        await page.getByText("No task matches these filters.").waitFor();
      });

      test("a waiting task cancelled from its page, then deleted: each after a second click", async () => {
        const page = fx.page;
        const later = await fx.queue.enqueue("noop", { later: true }, { delayMs: 3_600_000 });
        // The server keeps the newest task (so that its id is never given again): this one must not be it.
        await fx.queue.enqueue("noop", {});
        await open(fx, `#/tasks/${later.id}`);
        await waitForText(page, "h1 .badge", "queued");
        await page.getByTestId("cancel").click();
        await waitForText(page, "[data-testid=cancel]", /Click again/);
        assert.equal((await fx.queue.get(later.id))?.status, "queued", "one click does nothing");
        await page.getByTestId("cancel").click();
        await waitForText(page, "h1 .badge", "cancelled");
        await page.getByTestId("delete").click();
        await page.getByTestId("delete").click();
        await waitForText(page, "main h1", "Tasks");
        assert.match(page.url(), /#\/tasks$/);
        await waitForText(page, "#notice", `Task #${later.id} is deleted.`);
        assert.equal(await fx.queue.get(later.id), undefined);
      });

      test("pausing a queue stops its tasks from running; resuming runs them", async () => {
        const page = fx.page;
        await open(fx, "#/queues");
        await page.getByTestId("pause-bulk").click();
        await waitForText(page, "[data-testid=queue-state-bulk]", "paused");
        assert.equal((await fx.queue.listQueues()).find((q) => q.name === "bulk")?.paused, true);
        const held = await fx.queue.enqueue("noop", {}, { queue: "bulk" });
        // A task enqueued after it, in a running queue, completes: the worker is claiming, and passed it by.
        await fx.queue.waitFor((await fx.queue.enqueue("noop", {})).id, { timeoutMs: BROWSER_WAIT_MS });
        assert.equal((await fx.queue.get(held.id))?.status, "queued");
        await screenshot(page, `${database.kind}-queues`);
        await page.getByTestId("resume-bulk").click();
        await waitForText(page, "[data-testid=queue-state-bulk]", "active");
        assert.equal((await fx.queue.waitFor(held.id, { timeoutMs: BROWSER_WAIT_MS })).status, "completed");
      });

      test("the schedules page lists the schedule with its next run", async () => {
        await open(fx, "#/schedules");
        await waitForText(
          fx.page,
          "[data-testid=schedule-list] tbody",
          /nightly-report\s*noop\s*0 3 \* \* \*\s*UTC\s*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/,
        );
        await screenshot(fx.page, `${database.kind}-schedules`);
      });

      test("payloads, errors and logs holding <script> and <img onerror> stay text on every page", async () => {
        const page = fx.page;
        await open(fx, "#/tasks?type=hostile");
        await waitForText(page, "[data-testid=task-list] tbody", /<script>window\.__pwned/);
        await assertInert(fx, "the task list");
        await open(fx, `#/tasks/${fx.ids.hostile}`);
        for (const part of ["task-payload", "task-progress", "task-result", "task-logs"]) {
          await waitForText(
            page,
            `[data-testid=${part}]`,
            /<script>window\.__pwned = \\?"script\\?"<\/script><img src=x onerror=/,
          );
        }
        await assertInert(fx, "a hostile task's page");
        await screenshot(page, `${database.kind}-hostile-task`);
        await open(fx, `#/tasks/${fx.ids.hostileCharge}`);
        await waitForText(page, "[data-testid=task-error] pre", /card declined for 99 <script>/);
        await assertInert(fx, "a page with a hostile error");
        for (const hash of ["#/", "#/queues", "#/schedules", "#/tasks"]) {
          await open(fx, hash);
          await assertInert(fx, hash);
        }
      });

      test("the chart draws the minutes the API gives, and says so when /api/throughput answers 404", async () => {
        const page = fx.page;
        const minute = Math.floor(Date.now() / 60_000) * 60_000;
        const points = [
          { minute: minute - 120_000, completed: 7, failed: 2 },
          { minute: minute - 60_000, completed: 3, failed: 0 },
        ];
        await page.route("**/api/throughput?*", (route) => route.fulfill({ json: points }));
        await open(fx, "#/");
        await waitForText(
          page,
          "[data-testid=throughput-chart] .legend",
          /10 completed\s+2 failed in the last 60 minutes/,
        );
        assert.equal(await page.locator("[data-testid=throughput-chart] rect.bar-completed").count(), 2);
        assert.equal(await page.locator("[data-testid=throughput-chart] rect.bar-failed").count(), 1);
        await screenshot(page, `${database.kind}-chart`);
        await page.unroute("**/api/throughput?*");
        await page.route("**/api/throughput?*", (route) =>
          route.fulfill({
            status: 404,
            json: { error: { code: "ROUTE_NOT_FOUND", message: "No such route." } },
          }));
        await page.reload();
        await waitForText(page, "[data-testid=throughput-no-data]", /^No data: .*answered 404/);
        assert.equal(await page.locator("[data-testid=throughput-chart]").count(), 0);
        await page.unroute("**/api/throughput?*");
      });

      test("with tokens, the page asks for one, keeps it in sessionStorage and sends it as a bearer", async () => {
        const admin = "dashboard-admin-token-0123456789";
        const reader = "dashboard-read-token-0123456789";
        const guarded = await serveOnLoopback(
          createHttpHandler(fx.db, {
            registry: fx.handlers,
            adminTokens: [admin],
            readTokens: [reader],
            dashboard: dashboardResponse,
          }),
        );
        const context = await browser!.newContext();
        try {
          const page = await context.newPage();
          page.setDefaultTimeout(BROWSER_WAIT_MS);
          await page.goto(`${guarded.url}/#/tasks`);
          await waitForText(page, "#token-reason", "This server needs a token to be read.");
          await page.fill("#token-input", "not-the-token-at-all-0000");
          await page.click("#token-form button[type=submit]");
          await waitForText(page, "#token-reason", "The server refused this token: enter another.");
          await screenshot(page, `${database.kind}-token`);
          await page.fill("#token-input", admin);
          await page.click("#token-form button[type=submit]");
          await waitForText(page, "#status", /^Updated /);
          await page.locator("#token-form").waitFor({ state: "hidden" });
          assert.equal(await page.evaluate(() => sessionStorage.getItem("prismq.token")), admin);
          await page.reload();
          await waitForText(page, "#status", /^Updated /);
          assert.ok(await page.locator("#token-form").isHidden(), "the kept token is sent after a reload");
          await page.click("#forget-token");
          await waitForText(page, "#token-reason", "This server needs a token to be read.");
          assert.equal(await page.evaluate(() => sessionStorage.getItem("prismq.token")), null);

          // A read-only token shows the pages; an action is refused, with the server's reason shown.
          await page.fill("#token-input", reader);
          await page.click("#token-form button[type=submit]");
          await page.goto(`${guarded.url}/#/queues`);
          await page.getByTestId("pause-bulk").click();
          await waitForText(
            page,
            "#notice",
            /This token may only read; actions need a token from PRISMQ_ADMIN_TOKENS\./,
          );
          assert.equal((await fx.queue.listQueues()).find((q) => q.name === "bulk")?.paused, false);
        } finally {
          await context.close();
          await guarded.close();
        }
      });
    });
  }
});
