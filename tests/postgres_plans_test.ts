/**
 * PostgreSQL: the queries a worker makes as a drain ends read indexes, not the whole table, though the
 * planner's statistics, gathered while the tasks were queued, still say they are. A plan is the behaviour
 * here: the same answer read by a sequential scan cost 50 ms a look on 50,000 finished tasks.
 *
 * @module
 */
// Not rerun on libsql: PostgreSQL only.
import assert from "node:assert/strict";
import { test } from "node:test";
import postgres from "postgres";
import { compile } from "../src/store/postgres/sql.ts";
import { openPostgresStore } from "../src/store/postgres/mod.ts";
import { pendingQuery } from "../src/store/postgres/queries/read.ts";
import { freshDatabase, postgresUnavailable } from "./_postgres.ts";
import { newTask } from "./conformance/_fixtures.ts";

const skip = postgresUnavailable();
const NOW = 1_700_000_000_000;
const TASKS = 20_000;

/** The plan of `query` as text, one node a line. */
async function planOf(sql: postgres.Sql, query: ReturnType<typeof compile>): Promise<string> {
  const rows = await sql.unsafe(`EXPLAIN ${query.text}`, query.params as never[]);
  return rows.map((row) => Object.values(row)[0]).join("\n");
}

test(
  "the look for runnable and running tasks after a drain reads no task by a sequential scan",
  { skip },
  async () => {
    const database = await freshDatabase();
    const store = openPostgresStore(database.url, { maxConnections: 2 });
    const app = postgres(database.url, { max: 1, onnotice: false });
    try {
      await store.migrate(NOW);
      await store.taskInsertMany(Array.from({ length: TASKS }, () => newTask({ runAfter: 0 })), NOW);
      await app.unsafe("ANALYZE task_queue");
      // The drain, as autovacuum has not seen it yet.
      await app.unsafe("UPDATE task_queue SET status = 'completed', finished_at = $1", [NOW]);
      for (const [types, queues] of [[undefined, undefined], [["t"], undefined], [undefined, ["default"]]]) {
        const plan = await planOf(app, compile(pendingQuery(NOW, [], types, queues)));
        assert.doesNotMatch(plan, /Seq Scan on task_queue/, `types ${types}, queues ${queues}:\n${plan}`);
      }
      assert.deepEqual(await store.taskPending(NOW), { runnable: 0, running: 0 });
    } finally {
      await app.end();
      await store.close();
      await database.drop();
    }
  },
);
