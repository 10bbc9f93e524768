/**
 * The database files of the benchmark: created with PrismQ's own schema, filled with queued tasks before a
 * scenario's clock starts, read back afterwards to see what the workers did, and deleted.
 *
 * @module
 */
import { rmSync } from "node:fs";
import Database from "libsql";
import { type EnqueueItem, Queue, QueueDatabase } from "../../mod.ts";

const SEED_CHUNK = 10_000;

/** A payload the binary's `noop` handler accepts: its schema is strict, so `{ i }` would fail every task. */
export const NOOP_PAYLOAD = { sleepMs: 0 };

/** Creates the file with PrismQ's schema and nothing in it, so that raw baselines write the same tables. */
export async function createSchema(path: string): Promise<void> {
  const db = new QueueDatabase(path);
  try {
    await db.initializeSchema();
  } finally {
    db.close();
  }
}

/** Creates the file and queues `tasks` runnable `noop` tasks with {@link NOOP_PAYLOAD}. */
export async function seedQueue(path: string, tasks: number): Promise<void> {
  const db = new QueueDatabase(path);
  try {
    await db.initializeSchema();
    const queue = new Queue(db);
    for (let first = 0; first < tasks; first += SEED_CHUNK) {
      const items: EnqueueItem[] = [];
      for (let i = first; i < Math.min(tasks, first + SEED_CHUNK); i++) {
        items.push({ type: "noop", payload: NOOP_PAYLOAD });
      }
      await queue.enqueueMany(items);
    }
  } finally {
    db.close();
  }
}

/** What a drain left in the file. */
export interface DrainOutcome {
  tasks: number;
  completed: number;
  /** Tasks in any other status. */
  lost: number;
  /**
   * Extra executions: each claim counts an attempt, so a task run twice has attempts ≥ 2. A task never
   * claimed (attempts 0) counts as lost, not as minus one duplicate.
   */
  duplicates: number;
  /** From the first claim of a completed task to the last completion, in ms. */
  windowMs: number;
}

export function drainOutcome(path: string): DrainOutcome {
  const db = new Database(path);
  try {
    const window = db.prepare(
      "SELECT min(started_at) AS first, max(finished_at) AS last, count(*) AS completed " +
        "FROM task_queue WHERE status = 'completed'",
    ).get() as { first: number | null; last: number | null; completed: number };
    const totals = db.prepare(
      "SELECT count(*) AS tasks, coalesce(sum(max(attempts - 1, 0)), 0) AS duplicates, " +
        "coalesce(sum(status <> 'completed'), 0) AS lost FROM task_queue",
    ).get() as { tasks: number; duplicates: number; lost: number };
    return {
      tasks: Number(totals.tasks),
      completed: Number(window.completed),
      lost: Number(totals.lost),
      duplicates: Number(totals.duplicates),
      windowMs: window.first === null ? 0 : Number(window.last) - Number(window.first),
    };
  } finally {
    db.close();
  }
}

/** Tasks in the file, in any status. */
export function countTasks(path: string): number {
  const db = new Database(path);
  try {
    return Number((db.prepare("SELECT count(*) AS n FROM task_queue").get() as { n: number }).n);
  } finally {
    db.close();
  }
}

/** Deletes the database and its WAL and shared-memory files. */
export function removeDb(path: string): void {
  for (const suffix of ["", "-wal", "-shm"]) rmSync(path + suffix, { force: true });
}
