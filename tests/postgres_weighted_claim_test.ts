/**
 * PostgreSQL: a weighted_random claim draws among the best-priority runnable tasks (a window of 1,000), and
 * tops up from the rest when other workers hold nearly all of those, rather than coming back short. The
 * conformance suite checks claims at once on every store; this holds the whole window, as many busy
 * workers would.
 *
 * @module
 */
// Not rerun on libsql: PostgreSQL only.
import assert from "node:assert/strict";
import { test } from "node:test";
import postgres from "postgres";
import { openPostgresStore } from "../src/store/postgres/mod.ts";
import { freshDatabase, postgresUnavailable } from "./_postgres.ts";
import { newTask } from "./conformance/_fixtures.ts";

const skip = postgresUnavailable();
const NOW = 1_700_000_000_000;
const WINDOW = 1000;

const task = (priority: number) => newTask({ runAfter: 0, priority });

test(
  "a weighted_random claim takes its limit from beyond its window when others hold the window",
  { skip },
  async () => {
    const database = await freshDatabase();
    const store = openPostgresStore(database.url, { maxConnections: 2 });
    const app = postgres(database.url, { max: 1, onnotice: false });
    try {
      await store.migrate(NOW);
      await store.taskInsertMany(Array.from({ length: WINDOW }, () => task(0)), NOW);
      const beyond = await store.taskInsertMany(Array.from({ length: 10 }, () => task(5)), NOW);
      await app.begin(async (tx) => {
        // Another worker's claim under way: the whole window locked, not yet committed.
        await tx.unsafe("SELECT id FROM task_queue WHERE priority = 0 FOR UPDATE");
        const leased = await store.taskClaim({
          workerId: "w",
          limit: 4,
          leaseMs: 60_000,
          now: NOW,
          strategy: "weighted_random",
        });
        assert.equal(leased.length, 4, "the claim takes its limit");
        const ids = new Set(beyond.map((inserted) => inserted.id));
        for (const { task } of leased) assert.ok(ids.has(task.id), `task ${task.id} is one of the free ones`);
      });
    } finally {
      await app.end();
      await store.close();
      await database.drop();
    }
  },
);
