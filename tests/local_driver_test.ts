/**
 * The embedded-file driver: that a path with characters special in URLs opens exactly that file (how a
 * location becomes a path is tests/db_url_test.ts's), and that many-task enqueues, whose ids are inferred
 * from the last inserted row rather than read back, return the ids and contents the database holds, also
 * after purges.
 *
 * @module
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { LibsqlError } from "@libsql/client";
import { type EnqueueItem, Queue, QueueDatabase, type Task, WorkerEngine } from "../mod.ts";
import { toDatabaseError } from "../src/store/sqlite/database_errors.ts";
import { LocalDriver } from "../src/store/sqlite/local_driver.ts";
import { chooseEngine } from "../src/store/sqlite/engines.ts";
import { makeTempDir, withDb, withQueueAtT0 } from "./_helpers.ts";

describe("a database file", () => {
  test("opened on a path containing %, ?, # and a space is created under exactly that name", async () => {
    const { dir, remove } = makeTempDir();
    try {
      const name = "odd %41 name?x=1#frag.db";
      const path = join(dir, name);
      const db = new QueueDatabase(path);
      let task: Task;
      try {
        await db.initializeSchema();
        task = await new Queue(db).enqueue("t", { n: 1 });
      } finally {
        await db.close();
      }
      assert.ok(existsSync(path), `${path} exists`);
      const strays = readdirSync(dir).filter((entry) => !entry.startsWith(name));
      assert.deepEqual(strays, [], "no file under another name");

      const again = new QueueDatabase(path);
      try {
        assert.deepEqual(await new Queue(again).get(task.id), task);
      } finally {
        await again.close();
      }
    } finally {
      remove();
    }
  });
});

/** Unkeyed tasks whose fields all differ, so that a task read back under the wrong id cannot match. */
function items(n: number, tag: string): EnqueueItem[] {
  return Array.from({ length: n }, (_, i) => ({
    type: i % 3 ? "t" : "u",
    payload: { tag, i, text: "é".repeat(i % 4), list: [i, null, { deep: i % 2 === 0 }] },
    priority: (i * 7) % 11,
    maxAttempts: 1 + (i % 5),
    delayMs: i % 13,
    ...(i % 4 === 0 ? { timeoutMs: 1000 + i } : {}),
  }));
}

/** Asserts that ids are consecutive and that each task is exactly what the database holds under its id. */
async function assertAsStored(queue: Queue, tasks: Task[], given: EnqueueItem[]): Promise<void> {
  assert.equal(tasks.length, given.length);
  tasks.forEach((task, i) => {
    assert.equal(task.id, tasks[0].id + i, `ids are consecutive, in the order given (task ${i})`);
    assert.deepEqual(task.payload, given[i].payload);
  });
  for (const task of tasks) assert.deepEqual(await queue.get(task.id), task, `task ${task.id}`);
}

describe("enqueueMany without idempotency keys", () => {
  test("returns 2,500 tasks with consecutive ids, each exactly as the database holds it", async () => {
    await withQueueAtT0(async ({ queue }) => {
      const first = items(2500, "first");
      const tasks = await queue.enqueueMany(first);
      assert.equal(tasks[0].id, 1);
      await assertAsStored(queue, tasks, first);

      // On a table that already has rows, the next ones follow them.
      const single = await queue.enqueue("t", { tag: "single" });
      assert.equal(single.id, 2501);
      const second = items(2500, "second");
      const more = await queue.enqueueMany(second);
      assert.equal(more[0].id, 2502);
      await assertAsStored(queue, more, second);
      assert.equal((await queue.stats()).counts.queued, 5001);
    });
  });

  test("returns ids above every id seen before, after all but the newest finished task were purged", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const early = await queue.enqueueMany([1, 2, 3].map((n) => ({ type: "t", payload: { n } })));
      const summary = await new WorkerEngine({ db, workerId: "w1", clock }).runLoop({
        taskHandler: () => {},
        untilEmpty: true,
      });
      assert.equal(summary.completed, 3);
      clock.advance(1);
      // The newest task is kept: SQLite numbers a new row one past the largest id present.
      assert.equal(await queue.purge({ statuses: ["completed"], olderThanMs: 0 }), 2);
      assert.equal(await queue.get(early[0].id), undefined);
      assert.equal(await queue.get(early[1].id), undefined);
      assert.equal((await queue.get(early[2].id))?.status, "completed");

      const given = items(2500, "late");
      const tasks = await queue.enqueueMany(given);
      const highest = Math.max(...early.map((task) => task.id));
      assert.ok(tasks.every((task) => task.id > highest), `ids start at ${tasks[0].id}, after ${highest}`);
      await assertAsStored(queue, tasks, given);
    });
  });

  test("returns consecutive ids matching the database when the tasks span several insert statements", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      await queue.enqueue("t", { tag: "before" });
      const given = items(12_001, "big");
      const tasks = await queue.enqueueMany(given);
      assert.equal(tasks[0].id, 2);
      await assertAsStored(queue, tasks, given);
    });
  });
});

test("a libSQL error from another copy of @libsql/core is still read by its code", () => {
  // What a second, unshared copy of the package's class looks like: same name and fields, another class.
  class ForeignLibsqlError extends Error {
    override name = "LibsqlError";
    constructor(message: string, readonly code: string) {
      super(`${code}: ${message}`);
    }
  }
  const corrupt = toDatabaseError(new ForeignLibsqlError("file is not a database", "SQLITE_NOTADB"), "q.db");
  assert.equal(corrupt.name, "DatabaseError");
  assert.match(corrupt.message, /is not a valid SQLite database or is corrupt/);
  const plain = toDatabaseError(new Error("SQLITE_NOTADB: file is not a database"), "q.db");
  assert.doesNotMatch(plain.message, /is not a valid SQLite database/, "a plain Error is not taken for one");
});

test("files run on node:sqlite in Deno, or on libsql when PRISMQ_SQLITE_ENGINE says so", () => {
  const wanted = process.env.PRISMQ_SQLITE_ENGINE;
  assert.equal(new LocalDriver("unused.db").engine, wanted === "libsql" ? "libsql" : "node:sqlite");
  try {
    process.env.PRISMQ_SQLITE_ENGINE = "sqlite4";
    assert.throws(() => chooseEngine(), /PRISMQ_SQLITE_ENGINE must be 'node' or 'libsql', got 'sqlite4'/);
    process.env.PRISMQ_SQLITE_ENGINE = "libsql";
    assert.equal(chooseEngine().name, "libsql");
    process.env.PRISMQ_SQLITE_ENGINE = "node";
    assert.equal(chooseEngine().name, "node:sqlite");
  } finally {
    if (wanted === undefined) delete process.env.PRISMQ_SQLITE_ENGINE;
    else process.env.PRISMQ_SQLITE_ENGINE = wanted;
  }
});

describe("both engines give the same values and error codes", () => {
  test("an integer past 2^53 written by hand is read rounded, and its task still runs to completion", async () => {
    await withDb(async (db) => {
      await db.transaction((tx) =>
        tx.execute("INSERT INTO task_queue (type, payload, priority) VALUES ('big', '{}', 9007199254740993)")
      );
      const seen: number[] = [];
      const worker = new WorkerEngine({ db, workerId: "w" });
      assert.equal(await worker.claimAndProcess((task) => void seen.push(task.priority)), true);
      assert.deepEqual(seen, [9007199254740992]);
      const [task] = await new Queue(db).list();
      assert.equal(task.status, "completed");
    });
  });

  test("blobs come back as ArrayBuffers, and a UNIQUE conflict has its extended code", async () => {
    await withDb(async (db) => {
      const { rows } = await db.transaction((tx) => tx.execute("SELECT x'0102ff' AS b"));
      assert.ok(rows[0].b instanceof ArrayBuffer, `got ${Object.prototype.toString.call(rows[0].b)}`);
      assert.deepEqual([...new Uint8Array(rows[0].b as ArrayBuffer)], [1, 2, 255]);
      const insert = "INSERT INTO task_queue (type, payload, idempotency_key) VALUES ('t', '{}', 'same')";
      await db.transaction((tx) => tx.execute(insert));
      const error = await db.transaction((tx) => tx.execute(insert)).catch((e: unknown) => e);
      assert.ok(error instanceof LibsqlError, `got ${error}`);
      assert.equal(error.code, "SQLITE_CONSTRAINT");
      assert.equal(error.extendedCode, "SQLITE_CONSTRAINT_UNIQUE");
    });
  });
});
