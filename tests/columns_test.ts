/**
 * The SQLite store reads and writes rows by position where that is measurably faster (inserts take their
 * rows as JSON arrays, claims return rows of values), with every position taken from one column list in
 * src/store/sqlite/columns.ts. These tests hold the few hand-written parts to that list: every inserted
 * column lands in its own column, whichever one the tasks of a bulk insert differ in, and a claimed task
 * is the stored task, field for field.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Task } from "../mod.ts";
import { INSERT_KEYS } from "../src/store/sqlite/columns.ts";
import type { NewTask } from "../src/store/store.ts";
import { storeOf } from "../src/store/store_of.ts";
import { withDb } from "./_helpers.ts";

const NOW = 1_700_000_000_000;

/** Two new tasks that differ in every column an insert sets. */
const FIRST: NewTask = {
  type: "first",
  payload: '{"n":1}',
  priority: 10,
  maxAttempts: 3,
  runAfter: NOW - 1000,
  idempotencyKey: null,
  timeoutMs: 1000,
  retryPolicy: '{"initialDelayMs":5}',
  queue: "first_queue",
  uniqueKey: null,
  uniqueForMs: null,
};
const SECOND: NewTask = {
  type: "second",
  payload: '{"n":2}',
  priority: 20,
  maxAttempts: 4,
  runAfter: NOW - 2000,
  idempotencyKey: "second",
  timeoutMs: 2000,
  retryPolicy: null,
  queue: "second_queue",
  uniqueKey: "second-unique",
  uniqueForMs: 60_000,
};

/** What of `task` an insert set, as the stored task shows it. */
function inserted(task: Task): NewTask {
  return Object.fromEntries(
    INSERT_KEYS.map((key) => [
      key,
      key === "payload"
        ? JSON.stringify(task.payload)
        : key === "retryPolicy"
        ? task.retryPolicy && JSON.stringify(task.retryPolicy)
        : task[key],
    ]),
  ) as unknown as NewTask;
}

test("a bulk insert stores every column of every task, whichever column the tasks differ in", async () => {
  await withDb(async (db) => {
    for (const key of INSERT_KEYS) {
      const differing: NewTask = { ...FIRST, [key]: SECOND[key] };
      // Each way through the inserts: tasks alike but for the payload, tasks unalike, tasks with a key.
      for (
        const tasks of [[FIRST, differing], [differing, FIRST, { ...FIRST, idempotencyKey: `k-${key}` }]]
      ) {
        const results = await storeOf(db).taskInsertMany(tasks, NOW);
        const stored = await Promise.all(results.map(async ({ id }) => (await storeOf(db).taskGet(id))!));
        assert.deepEqual(stored.map(inserted), tasks, `tasks differing in ${key}`);
      }
    }
    // And one task on its own.
    const alone = { ...SECOND, idempotencyKey: "alone", uniqueKey: "alone" };
    const [{ id }] = await storeOf(db).taskInsertMany([alone], NOW);
    assert.deepEqual(inserted((await storeOf(db).taskGet(id))!), alone);
  });
});

test("a claimed task is the stored task, field for field", async () => {
  await withDb(async (db) => {
    await storeOf(db).taskInsertMany([FIRST, SECOND], NOW);
    const leased = await storeOf(db).taskClaim({
      workerId: "w",
      limit: 2,
      start: 1,
      leaseMs: 30_000,
      now: NOW,
      strategy: "priority",
    });
    assert.equal(leased.length, 2);
    for (const { task } of leased) assert.deepEqual(task, await storeOf(db).taskGet(task.id));
  });
});
