/**
 * PostgreSQL: the queries a worker makes read indexes, not the whole table, though the planner's statistics
 * may be stale: the look for runnable tasks as a drain ends (the statistics still say the tasks are queued),
 * and the claim of a worker that serves a limited queue (whose limit the planner cannot know beforehand). A
 * plan is the behaviour here: the same answer read by a sequential scan cost 50 ms a look on 50,000
 * finished tasks.
 *
 * @module
 */
// Not rerun on libsql: PostgreSQL only.
import assert from "node:assert/strict";
import { test } from "node:test";
import postgres from "postgres";
import { compile } from "../src/store/postgres/sql.ts";
import { openPostgresStore, type PostgresStore } from "../src/store/postgres/mod.ts";
import { pendingQuery } from "../src/store/postgres/queries/read.ts";
import { mergedClaimStatement } from "../src/store/postgres/queries/merged_claim.ts";
import type { ClaimParams, ClaimStrategy } from "../src/store/store.ts";
import { freshDatabase, postgresUnavailable } from "./_postgres.ts";
import { newTask } from "./conformance/_fixtures.ts";

const skip = postgresUnavailable();
const NOW = 1_700_000_000_000;
const TASKS = 20_000;

/**
 * Runs `check` on a fresh database holding {@link TASKS} due tasks in the default queue, with the store and a
 * connection of its own (as an application's), all closed and dropped after.
 */
async function withDueTasks(
  check: (store: PostgresStore, app: postgres.Sql) => Promise<void>,
): Promise<void> {
  const database = await freshDatabase();
  const store = openPostgresStore(database.url, { maxConnections: 2 });
  const app = postgres(database.url, { max: 1, onnotice: false });
  try {
    await store.migrate(NOW);
    await store.taskInsertMany(Array.from({ length: TASKS }, () => newTask({ runAfter: 0 })), NOW);
    await check(store, app);
  } finally {
    await app.end();
    await store.close();
    await database.drop();
  }
}

/** Limits on the default queue, above anything a worker reaches: its claims take the limited path. */
async function limitAboveReach(store: PostgresStore): Promise<void> {
  await store.queueUpdate(
    "default",
    { concurrency: 10_000, rate: { limit: 10_000_000, intervalMs: 1000 } },
    NOW,
  );
}

/** The statistics a plan is checked under, each stage after the one before: a statement brings it about. */
const STATISTICS_STAGES: [string, string | null][] = [
  ["no statistics yet", null],
  ["statistics of the queued tasks", "ANALYZE task_queue; ANALYZE queues"],
  // A drain under way, as autovacuum has not seen it yet: the statistics say all are queued.
  [
    "most tasks run since",
    `UPDATE task_queue SET status = 'completed', finished_at = ${NOW} WHERE id % 50 <> 0`,
  ],
];

/** The plan of `query` as text, one node a line. */
async function planOf(sql: postgres.Sql, query: { text: string; params: unknown[] }): Promise<string> {
  const rows = await sql.unsafe(`EXPLAIN ${query.text}`, query.params as never[]);
  return rows.map((row) => Object.values(row)[0]).join("\n");
}

test(
  "the look for runnable and running tasks after a drain reads no task by a sequential scan",
  { skip },
  async () => {
    await withDueTasks(async (store, app) => {
      await app.unsafe("ANALYZE task_queue");
      // The drain, as autovacuum has not seen it yet.
      await app.unsafe("UPDATE task_queue SET status = 'completed', finished_at = $1", [NOW]);
      for (const [types, queues] of [[undefined, undefined], [["t"], undefined], [undefined, ["default"]]]) {
        const plan = await planOf(app, compile(pendingQuery(NOW, [], types, queues)));
        assert.doesNotMatch(plan, /Seq Scan on task_queue/, `types ${types}, queues ${queues}:\n${plan}`);
      }
      assert.deepEqual(await store.taskPending(NOW), { runnable: 0, running: 0 });
    });
  },
);

/** A worker's claim as the bench's worker makes it: 4 slots free, 512 more claimed ahead. */
function claimParams(strategy: ClaimStrategy): ClaimParams {
  return { workerId: "w", limit: 516, start: 4, leaseMs: 60_000, now: NOW, strategy };
}

test(
  "a claim from a limited queue reads its tasks from the index led by the queue, whatever the statistics say",
  { skip },
  async () => {
    await withDueTasks(async (store, app) => {
      await limitAboveReach(store);
      for (const [stage, statement] of STATISTICS_STAGES) {
        if (statement !== null) await app.unsafe(statement);
        for (const withFree of [true, false]) {
          const query = mergedClaimStatement(claimParams("priority"), ["default"], withFree, ["default"]);
          const plan = await planOf(app, query);
          const where = `${stage}, ${withFree ? "with" : "without"} free queues:\n${plan}`;
          assert.doesNotMatch(plan, /Seq Scan on task_queue/, where);
          assert.match(plan, /Index Scan using task_queue_queued_queue/, where);
        }
      }
    });
  },
);

test(
  "a claim by id beside a limited queue's backlog walks the id index to the free queues' tasks",
  { skip },
  async () => {
    await withDueTasks(async (store, app) => {
      await store.taskInsertMany(
        Array.from({ length: 1000 }, () => newTask({ queue: "other", runAfter: 0 })),
        NOW,
      );
      await store.queueUpdate("default", { concurrency: 10_000 }, NOW);
      await app.unsafe("ANALYZE task_queue; ANALYZE queues");
      // The statistics see the free queue's tasks: the planner expects as many as there are, not one.
      for (const strategy of ["fifo", "lifo"] as const) {
        const plan = await planOf(
          app,
          mergedClaimStatement(claimParams(strategy), ["default"], true, ["default"]),
        );
        assert.doesNotMatch(plan, /Seq Scan on task_queue/, `${strategy}:\n${plan}`);
      }
    });
  },
);

/**
 * The plan of `query` as it ran (`EXPLAIN ANALYZE`, in a transaction rolled back after it), one node a
 * line: a node the statement never reached says "never executed".
 */
async function ranPlanOf(sql: postgres.Sql, query: { text: string; params: unknown[] }): Promise<string> {
  let plan = "";
  const rollback = new Error("rolled back");
  await sql.begin(async (tx) => {
    const rows = await tx.unsafe(
      `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) ${query.text}`,
      query.params as never[],
    );
    plan = rows.map((row) => Object.values(row)[0]).join("\n");
    throw rollback;
  }).catch((error) => {
    if (error !== rollback) throw error;
  });
  return plan;
}

test(
  "a first-in or last-in claim beside a limited queue's backlog reads no task by a sequential scan, whatever the statistics say",
  { skip },
  async () => {
    await withDueTasks(async (store, app) => {
      await limitAboveReach(store);
      for (const [stage, statement] of STATISTICS_STAGES) {
        if (statement !== null) await app.unsafe(statement);
        for (const strategy of ["fifo", "lifo"] as const) {
          for (const withFree of [true, false]) {
            const query = mergedClaimStatement(claimParams(strategy), ["default"], withFree, ["default"]);
            const plan = await ranPlanOf(app, query);
            const where = `${stage}, ${strategy}, ${withFree ? "with" : "without"} free queues:\n${plan}`;
            // Every task is the limited queue's: a free part that looked for others read them all.
            const scans = plan.split("\n").filter((line) => /Seq Scan on task_queue/.test(line));
            assert.ok(scans.every((line) => /never executed/.test(line)), where);
            assert.match(plan, /Index Scan.* on task_queue/, where);
          }
        }
      }
    });
  },
);
