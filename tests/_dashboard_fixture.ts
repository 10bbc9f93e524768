/**
 * The dashboard browser test's world: a real database (a file or PostgreSQL), the server's real handler on
 * 127.0.0.1, a worker in this process with handlers that complete, fail on demand, and echo hostile markup,
 * and a Chromium page that records dialogs and errors.
 *
 * @module
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import type { Browser, BrowserContext, Page } from "playwright-core";
import * as v from "valibot";
import {
  defineHandler,
  defineSchedule,
  Queue,
  QueueDatabase,
  TaskHandlerRegistry,
  WorkerEngine,
} from "../mod.ts";
import { makeTempDir, waitFor } from "./_helpers.ts";
import type { ProcessDatabase } from "./_databases.ts";
import { BROWSER_WAIT_MS, type LoopbackServer, serveOnLoopback, waitForText } from "./_browser.ts";
import { createHttpHandler } from "../src/server/app.ts";
import { dashboardResponse } from "../src/server/dashboard/mod.ts";

/** Markup that runs script if a page ever parses it: it sets `window.__pwned` or opens a dialog. */
export const HOSTILE =
  `<script>window.__pwned = "script"</script><img src=x onerror="window.__pwned = 'img'; alert(1)">`;

export interface Fixture {
  db: QueueDatabase;
  handlers: TaskHandlerRegistry;
  queue: Queue;
  server: LoopbackServer;
  page: Page;
  /** Dialogs the page opened and errors it threw: a hostile payload that ran would show here. */
  incidents: string[];
  /** Charges fail while this is true; the retry tests turn it off. */
  charges: { failing: boolean };
  ids: Record<string, number>;
  close(): Promise<void>;
}

function registry(charges: { failing: boolean }): TaskHandlerRegistry {
  const handlers = new TaskHandlerRegistry();
  handlers.registerHandler(defineHandler({
    type: "report",
    schema: v.looseObject({ account: v.number(), pages: v.number() }),
    async handle(task, ctx) {
      await ctx.progress({ done: task.payload.pages, of: task.payload.pages });
      await ctx.log("info", `rendered ${task.payload.pages} pages`, { account: task.payload.account });
      return { url: `reports/${task.payload.account}.pdf` };
    },
  }));
  handlers.registerHandler(defineHandler({
    type: "charge",
    schema: v.looseObject({ account: v.number(), note: v.optional(v.string()) }),
    handle(task) {
      if (charges.failing) {
        throw new Error(`card declined for ${task.payload.account} ${task.payload.note ?? ""}`);
      }
      return { charged: task.payload.account };
    },
  }));
  handlers.registerHandler(defineHandler({
    type: "hostile",
    schema: v.looseObject({ note: v.string() }),
    async handle(task, ctx) {
      await ctx.log("warn", task.payload.note, { note: task.payload.note });
      await ctx.progress({ note: task.payload.note });
      return { note: task.payload.note };
    },
  }));
  handlers.registerHandler(defineHandler({ type: "noop", schema: v.unknown(), handle() {} }));
  handlers.registerHandler(defineHandler({ type: "mail", schema: v.unknown(), handle() {} }));
  handlers.registerSchedule(defineSchedule({ name: "nightly-report", type: "noop", cron: "0 3 * * *" }));
  return handlers;
}

export async function start(database: ProcessDatabase, browser: Browser): Promise<Fixture> {
  const dir = makeTempDir("prismq-dashboard-");
  const { location, drop } = await database.create(dir.dir);
  const db = new QueueDatabase(location);
  await db.initializeSchema();
  const charges = { failing: true };
  const handlerRegistry = registry(charges);
  const queue = new Queue(db, { registry: handlerRegistry });
  const ids: Record<string, number> = {};
  for (const [i, pages] of [3, 5, 8].entries()) {
    ids[`report${i}`] = (await queue.enqueue("report", { account: 7, pages })).id;
  }
  // A fan-in: runs once both reports have completed; its page and theirs show the dependency both ways.
  ids.fanIn = (await queue.enqueue("mail", {}, { dependsOn: [ids.report0!, ids.report1!] })).id;
  ids.charge42 = (await queue.enqueue("charge", { account: 42 }, { maxAttempts: 1 })).id;
  ids.charge43 = (await queue.enqueue("charge", { account: 43 }, { maxAttempts: 1 })).id;
  ids.hostile = (await queue.enqueue("hostile", { note: HOSTILE })).id;
  ids.hostileCharge = (await queue.enqueue("charge", { account: 99, note: HOSTILE }, { maxAttempts: 1 })).id;
  await queue.enqueueMany(
    Array.from({ length: 30 }, (_, n) => ({ type: "noop", payload: { n }, queue: "bulk" })),
  );
  // A queue with a limit is listed even while it holds nothing, so the Queues page can always pause it.
  await queue.setQueueLimits("bulk", { concurrency: 4 });
  const worker = new WorkerEngine({ db, workerId: "dashboard-worker", handlerRegistry, concurrency: 2 });
  const loop = worker.runLoop();
  for (const id of Object.values(ids)) await queue.waitFor(id, { timeoutMs: BROWSER_WAIT_MS });
  // The pages are checked against counts that must hold still: every seeded task has finished.
  await waitFor(
    async () => {
      const { counts } = await queue.stats();
      return counts.queued + counts.running === 0;
    },
    BROWSER_WAIT_MS,
    "the seeded tasks to finish",
  );
  const server = await serveOnLoopback(
    createHttpHandler(db, { registry: handlerRegistry, dashboard: dashboardResponse }),
  );
  // Ignoring the CSP makes this test able to fail: markup the page parsed from data would run here.
  const context: BrowserContext = await browser.newContext({
    bypassCSP: true,
    viewport: { width: 1280, height: 900 },
  });
  const page = await context.newPage();
  page.setDefaultTimeout(BROWSER_WAIT_MS);
  const incidents: string[] = [];
  page.on("dialog", (dialog) => {
    incidents.push(`dialog: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on("pageerror", (error) => incidents.push(`page error: ${error.message}`));
  return {
    db,
    handlers: handlerRegistry,
    queue,
    server,
    page,
    incidents,
    charges,
    ids,
    async close() {
      await context.close();
      await server.close();
      await worker.stop();
      await loop;
      await db.close();
      await drop();
      rmSync(dir.dir, { recursive: true, force: true });
    },
  };
}

/** Opens a page of the dashboard and waits for its first refresh. */
export async function open(fx: Fixture, hash: string): Promise<void> {
  await fx.page.goto(`${fx.server.url}/${hash}`);
  await waitForText(fx.page, "#status", /^Updated /);
}

/** Asserts that no markup from data became an element or ran, and that it shows as text. */
export async function assertInert(fx: Fixture, where: string): Promise<void> {
  const page = fx.page;
  assert.equal(await page.evaluate(() => (globalThis as { __pwned?: string }).__pwned), undefined, where);
  assert.equal(await page.locator("main script, main img, main iframe").count(), 0, where);
  assert.deepEqual(fx.incidents, [], where);
}

/** Waits until the task list shows exactly `n` rows. */
export async function waitForRows(page: Page, n: number): Promise<void> {
  await page.waitForFunction(
    `document.querySelectorAll("[data-testid=task-list] tbody tr").length === ${n}`,
    undefined,
    { timeout: BROWSER_WAIT_MS },
  );
}
