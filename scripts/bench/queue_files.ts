/**
 * The benchmark's queues: created with PrismQ's own schema, and filled with queued tasks before a
 * scenario's clock starts, on any database `QueueDatabase` opens (a file, or a PostgreSQL URL).
 *
 * @module
 */
import { type EnqueueItem, Queue, QueueDatabase } from "../../mod.ts";

const SEED_CHUNK = 10_000;

/** A payload the binary's `noop` handler accepts: its schema is strict, so `{ i }` would fail every task. */
export const NOOP_PAYLOAD = { sleepMs: 0 };

/** Creates PrismQ's schema and nothing in it, so that raw baselines write the same tables. */
export async function createSchema(location: string): Promise<void> {
  const db = new QueueDatabase(location);
  try {
    await db.initializeSchema();
  } finally {
    await db.close();
  }
}

/** Creates the schema and queues `tasks` runnable `noop` tasks with {@link NOOP_PAYLOAD}. */
export async function seedQueue(location: string, tasks: number): Promise<void> {
  const db = new QueueDatabase(location);
  try {
    await db.initializeSchema();
    const queue = new Queue(db);
    for (let first = 0; first < tasks; first += SEED_CHUNK) {
      const items: EnqueueItem[] = [];
      for (let i = first; i < Math.min(tasks, first + SEED_CHUNK); i++) {
        items.push({ type: "noop", payload: NOOP_PAYLOAD });
      }
      await queue.enqueueManyIds(items);
    }
  } finally {
    await db.close();
  }
}
