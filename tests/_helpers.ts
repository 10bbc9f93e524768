/**
 * Shared test fixtures: a fresh database file in its own temporary folder.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QueueDatabase } from "../mod.ts";

/** A new empty folder under the system's temporary folder; removed by the returned function. */
export function makeTempDir(prefix = "prismq-test-"): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A migrated database in a real file, closed and deleted when `fn` settles. */
export async function withDb<T>(fn: (db: QueueDatabase, path: string) => Promise<T>): Promise<T> {
  const { dir, remove } = makeTempDir();
  const path = join(dir, "queue.db");
  const db = new QueueDatabase(path);
  try {
    await db.initializeSchema();
    return await fn(db, path);
  } finally {
    db.close();
    remove();
  }
}

/** Resolves after `ms` milliseconds. Tests wait on events, not time; this is for the few that must. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns true, failing after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = "condition",
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.`);
    await delay(5);
  }
}
