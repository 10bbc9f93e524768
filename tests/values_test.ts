/**
 * Values the queue could not honour are refused before anything is written, with an error naming them:
 * options (Infinity, fractions, timers longer than the runtime keeps), times outside a Date's range, ids
 * past 2^53, text that is not valid Unicode. Long durations within range are honoured. The table itself
 * refuses such values from plain SQL, on every SQLite PrismQ supports (Debian's sqlite3 3.40 among them).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import Database from "libsql";
import {
  DatabaseError,
  type EnqueueOptions,
  Queue,
  QueueDatabase,
  TaskHandlerRegistry,
  WorkerEngine,
  type WorkerEngineOptions,
} from "../mod.ts";
import { MIGRATIONS } from "../src/store/sqlite/migrations.ts";
import { longTimeout } from "../src/timers.ts";
import { delay, makeTempDir, rejectionOf, withDb } from "./_helpers.ts";

const DAY = 86_400_000;

describe("options are checked at construction", () => {
  const bad: [string, Partial<WorkerEngineOptions>, RegExp][] = [
    [
      "leaseMs: Infinity",
      { leaseMs: Infinity },
      /leaseMs must be at most|leaseMs \(milliseconds\) must be a whole/,
    ],
    ["leaseMs: 1.5", { leaseMs: 1500.5 }, /leaseMs \(milliseconds\) must be a whole number/],
    [
      "concurrency: Infinity",
      { concurrency: Infinity },
      /concurrency must be a whole number from 1 to 10000/,
    ],
    ["concurrency: 0", { concurrency: 0 }, /concurrency/],
    ["prefetch: NaN", { prefetch: NaN }, /prefetch/],
    ["pollIntervalMs: 0", { pollIntervalMs: 0 }, /pollIntervalMs/],
    ["pollIntervalMs over 100 years", { pollIntervalMs: 101 * 365 * DAY }, /at most 3153600000000 ms/],
    ["heartbeatIntervalMs: the lease", { leaseMs: 1000, heartbeatIntervalMs: 1000 }, /shorter than leaseMs/],
    ["reapIntervalMs: -1", { reapIntervalMs: -1 }, /reapIntervalMs/],
    ["shutdownGraceMs: NaN", { shutdownGraceMs: NaN }, /shutdownGraceMs/],
    ["shutdownGraceMs: -1", { shutdownGraceMs: -1 }, /shutdownGraceMs/],
    ["types: []", { types: [] }, /non-empty array/],
    ["types with a blank type", { types: ["a", " "] }, /Task type cannot be empty/],
    ["types with a lone surrogate", { types: ["a\ud800"] }, /not well-formed Unicode/],
    ["retry.initialDelayMs: Infinity", { retry: { initialDelayMs: Infinity } }, /retry.initialDelayMs/],
    ["strategy: random", { strategy: "random" as never }, /Unknown strategy 'random'/],
    ["clock: {}", { clock: {} as never }, /clock must be/],
    ["pid: 1.5", { pid: 1.5 }, /pid must be/],
  ];
  for (const [what, options, message] of bad) {
    test(`WorkerEngine refuses ${what}`, async () => {
      await withDb((db) => {
        assert.throws(
          () =>
            new WorkerEngine({ db, workerId: "w", handlerRegistry: new TaskHandlerRegistry(), ...options }),
          (error: Error) =>
            (error instanceof RangeError || error instanceof TypeError) && message.test(error.message),
        );
      });
    });
  }

  test("WorkerEngine accepts shutdownGraceMs: Infinity and durations past 2^31 ms", async () => {
    await withDb((db) => {
      const registry = new TaskHandlerRegistry();
      const worker = new WorkerEngine({
        db,
        workerId: "w",
        handlerRegistry: registry,
        shutdownGraceMs: Infinity,
        leaseMs: 30 * DAY,
        pollIntervalMs: 25 * DAY,
        reapIntervalMs: 25 * DAY,
      });
      assert.equal(worker.runningCount, 0);
    });
  });

  const badDb: [string, object, RegExp][] = [
    ["busyTimeoutMs: Infinity", { busyTimeoutMs: Infinity }, /busyTimeoutMs/],
    ["busyTimeoutMs: -1", { busyTimeoutMs: -1 }, /busyTimeoutMs/],
    ["requestTimeoutMs: Infinity", { requestTimeoutMs: Infinity }, /requestTimeoutMs/],
    ["requestTimeoutMs: 0", { requestTimeoutMs: 0 }, /requestTimeoutMs/],
    ["synchronous: fast", { synchronous: "fast" }, /synchronous must be/],
    ["authToken: 42", { authToken: 42 }, /authToken must be a string/],
  ];
  for (const [what, options, message] of badDb) {
    test(`QueueDatabase refuses ${what} when constructed`, () => {
      assert.throws(() => new QueueDatabase(":memory:", options as never), message);
    });
  }
});

describe("enqueue refuses values it could not store exactly, and writes nothing", () => {
  const bad: [string, EnqueueOptions & { type?: string; payload?: unknown }, RegExp][] = [
    ["priority: Infinity", { priority: Infinity }, /priority must be a whole number/],
    ["maxAttempts: Infinity", { maxAttempts: Infinity }, /maxAttempts must be a whole number/],
    ["timeoutMs: Infinity", { timeoutMs: Infinity }, /timeoutMs/],
    ["timeoutMs over 100 years", { timeoutMs: 101 * 365 * DAY }, /at most 3153600000000 ms/],
    ["delayMs: Infinity", { delayMs: Infinity }, /delayMs must be a number ≥ 0/],
    ["delayMs: 1e300", { delayMs: 1e300 }, /past the latest time a Date can hold/],
    ["runAt: -1e300", { runAt: -1e300 }, /runAt must be a time within the range of a Date/],
    ["runAt: 9e15", { runAt: 9e15 }, /runAt must be a time within the range/],
    [
      "an idempotency key with a lone surrogate",
      { idempotencyKey: "a\ud800" },
      /idempotencyKey is not well-formed/,
    ],
    ["a type with a lone surrogate", { type: "\udc00t" }, /task type .* is not well-formed Unicode/],
    ["a payload with a lone surrogate", { payload: { text: "x\ud800y" } }, /payload .* is not well-formed/],
    ["a payload key with a lone surrogate", { payload: { ["\ud800"]: 1 } }, /payload .* is not well-formed/],
    ["a payload holding a BigInt", { payload: { n: 1n } }, /cannot be written as JSON/],
  ];
  for (const [what, item, message] of bad) {
    test(`${what}`, async () => {
      await withDb(async (db) => {
        const queue = new Queue(db);
        const { type = "t", payload = {}, ...options } = item;
        await assert.rejects(queue.enqueue(type, payload, options), message);
        // In a batch too: nothing of it is written.
        await assert.rejects(queue.enqueueMany([{ type: "t" }, { ...options, type, payload }]), message);
        assert.equal((await queue.list()).length, 0);
      });
    });
  }

  test("two keys that differ only in a lone surrogate cannot become one", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const items = [{ type: "t", idempotencyKey: "k\ud800" }, { type: "t", idempotencyKey: "k\ud801" }];
      await assert.rejects(queue.enqueueManyIds(items), /not well-formed/);
      assert.equal((await queue.list()).length, 0);
    });
  });
});

describe("durations past 2^31 ms are honoured, not cut to 1 ms", () => {
  test("a timer of 2^31 ms does not fire at once", async () => {
    let fired = false;
    const timer = longTimeout(() => (fired = true), 2 ** 31 + 10);
    await delay(50);
    clearTimeout(timer.timer);
    assert.equal(fired, false);
  });

  test("a task with a 25-day timeout runs to completion", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const task = await queue.enqueue("slow", {}, { timeoutMs: 25 * DAY });
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("slow", () => delay(50));
      const worker = new WorkerEngine({
        db,
        workerId: "w",
        handlerRegistry: registry,
        pollIntervalMs: 25 * DAY,
      });
      await worker.runLoop({ untilEmpty: true });
      const done = await queue.get(task.id);
      assert.equal(done?.status, "completed", done?.errorMessage ?? "");
    });
  });

  test("a stop with a 25-day grace lets a running handler finish", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const task = await queue.enqueue("slow");
      const registry = new TaskHandlerRegistry();
      let started!: () => void;
      const running = new Promise<void>((resolve) => (started = resolve));
      registry.registerHandler("slow", async () => {
        started();
        await delay(50);
      });
      const worker = new WorkerEngine({ db, workerId: "w", handlerRegistry: registry });
      const loop = worker.runLoop();
      await running;
      await worker.stop({ graceMs: 25 * DAY });
      await loop;
      assert.equal((await queue.get(task.id))?.status, "completed");
    });
  });
});

/** Runs SQL on the file through another SQLite than PrismQ's: the `sqlite3` command line (Debian 12: 3.40). */
function plainSql(path: string, sql: string): void {
  execFileSync("sqlite3", [path, sql], { stdio: ["ignore", "pipe", "pipe"] });
}

const PYTHON_INSERT = `
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], timeout=5)
connection.execute("INSERT INTO task_queue (type, payload) VALUES ('email', '{}')")
connection.commit()
`;

/** The SQLite version of python3's sqlite3 module, or undefined without one. */
const PYTHON_SQLITE = ((): string | undefined => {
  const found = spawnSync("python3", ["-c", "import sqlite3; print(sqlite3.sqlite_version)"], {
    encoding: "utf8",
  });
  return found.status === 0 ? found.stdout.trim() : undefined;
})();

/** Whether a dotted version is older than `[major, minor]`. */
function versionBelow(version: string, [major, minor]: [number, number]): boolean {
  const [a = 0, b = 0] = version.split(".").map(Number);
  return a < major || (a === major && b < minor);
}

describe("the table refuses what PrismQ could not read back, from plain SQL too", () => {
  test("Debian's sqlite3 (3.40) inserts a runnable task with plain SQL, and the worker runs it", async () => {
    await withDb(async (db, path) => {
      const version = execFileSync("sqlite3", ["--version"], { encoding: "utf8" });
      plainSql(path, "INSERT INTO task_queue (type, payload) VALUES ('email', '{}')");
      const [task] = await new Queue(db).list();
      assert.equal(task?.status, "queued", `sqlite3 ${version}`);
      assert.ok(Math.abs(task.runAfter - Date.now()) < 60_000, `run_after ${task.runAfter} is about now`);
      assert.equal(task.createdAt, task.runAfter);
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("email", () => {});
      await new WorkerEngine({ db, workerId: "w", handlerRegistry: registry }).runLoop({ untilEmpty: true });
      assert.equal((await new Queue(db).get(task.id))?.status, "completed");
    });
  });

  test("Python's sqlite3 module inserts a runnable task with plain SQL, and the worker runs it", {
    skip: PYTHON_SQLITE === undefined
      ? "no python3 with a sqlite3 module"
      : versionBelow(PYTHON_SQLITE, [3, 37])
      ? `Python's SQLite is ${PYTHON_SQLITE}, older than 3.37, which cannot read STRICT tables`
      : false,
  }, async () => {
    await withDb(async (db, path) => {
      execFileSync("python3", ["-c", PYTHON_INSERT, path], { stdio: ["ignore", "pipe", "pipe"] });
      const [task] = await new Queue(db).list();
      assert.equal(task?.status, "queued", `Python's SQLite ${PYTHON_SQLITE}`);
      assert.ok(Math.abs(task.runAfter - Date.now()) < 60_000, `run_after ${task.runAfter} is about now`);
      assert.ok(Number.isInteger(task.runAfter) && task.createdAt === task.updatedAt);
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("email", () => {});
      await new WorkerEngine({ db, workerId: "w", handlerRegistry: registry }).runLoop({ untilEmpty: true });
      assert.equal((await new Queue(db).get(task.id))?.status, "completed");
    });
  });

  const refused: [string, string][] = [
    ["a REAL due time", "INSERT INTO task_queue (type, run_after) VALUES ('a', 1e300)"],
    ["a fractional due time", "INSERT INTO task_queue (type, run_after) VALUES ('a', 1.5)"],
    [
      "a due time past a Date's range",
      "INSERT INTO task_queue (type, run_after) VALUES ('a', 9000000000000000)",
    ],
    ["a due time as text", "INSERT INTO task_queue (type, run_after) VALUES ('a', 'tomorrow')"],
    ["fractional attempts", "INSERT INTO task_queue (type, max_attempts) VALUES ('a', 2.5)"],
    ["an id past 2^53", "INSERT INTO task_queue (id, type) VALUES (9007199254740992, 'a')"],
    ["a payload that is not JSON", "INSERT INTO task_queue (type, payload) VALUES ('a', '{')"],
  ];
  for (const [what, sql] of refused) {
    test(`${what} is refused`, async () => {
      await withDb(async (db, path) => {
        assert.throws(() => plainSql(path, sql), /constraint failed|cannot store/i);
        assert.equal((await new Queue(db).list()).length, 0);
      });
    });
  }

  test("the next id after 2^53 - 1 is refused, not rounded", async () => {
    await withDb(async (db, path) => {
      plainSql(path, "INSERT INTO task_queue (id, type) VALUES (9007199254740991, 'a')");
      const error = await rejectionOf(new Queue(db).enqueue("b"));
      assert.ok(error instanceof Error, String(error));
      const [task] = await new Queue(db).list();
      assert.equal(task.id, Number.MAX_SAFE_INTEGER);
    });
  });
});

describe("migration 4: stricter values for databases made before it", () => {
  /** A database as migrations 1 to 3 left it. */
  function version3(path: string, rows: string[]): void {
    const old = new Database(path);
    old.exec(
      "CREATE TABLE prismq_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    );
    for (const migration of MIGRATIONS.slice(0, 3)) {
      old.exec(migration.sql);
      old.exec(`INSERT INTO prismq_migrations VALUES (${migration.version}, 'x', 0)`);
    }
    for (const row of rows) old.exec(row);
    old.close();
  }

  test("keeps every task and log, and brings values written before it into range", async () => {
    const { dir, remove } = makeTempDir();
    const path = join(dir, "old.db");
    try {
      version3(path, [
        "INSERT INTO task_queue (id, type, payload, run_after) VALUES (1, 'a', '{\"n\":1}', 1000)",
        "INSERT INTO task_queue (id, type, run_after, max_attempts) VALUES (2, 'b', 1e300, 2.0)",
        "INSERT INTO task_queue (id, type, run_after) VALUES (3, 'c', -1e300)",
        "INSERT INTO task_logs (task_id, at, level, message) VALUES (1, 5, 'info', 'kept')",
      ]);
      const db = new QueueDatabase(path);
      try {
        await db.initializeSchema();
        const queue = new Queue(db);
        const tasks = await queue.list();
        assert.deepEqual(tasks.map((t) => [t.id, t.type, t.runAfter]), [
          [3, "c", -8.64e15],
          [2, "b", 8.64e15],
          [1, "a", 1000],
        ]);
        assert.deepEqual((await queue.get(1))?.payload, { n: 1 });
        assert.equal((await queue.get(2))?.maxAttempts, 2);
        assert.deepEqual((await queue.logs(1)).map((log) => log.message), ["kept"]);
        // The logs table still belongs to the tasks: purging a task takes its logs along.
        assert.equal(await queue.cancel(1).then((t) => t.status), "cancelled");
        const tomorrow = new Queue(db, { clock: { now: () => Date.now() + DAY } });
        assert.equal(await tomorrow.purge({ statuses: ["cancelled"], olderThanMs: 0 }), 1);
        assert.deepEqual(await queue.logs(1), []);
      } finally {
        db.close();
      }
    } finally {
      remove();
    }
  });

  test("plain SQL from Debian's sqlite3 fails on a version-3 database and works once it is upgraded", async () => {
    const { dir, remove } = makeTempDir();
    const path = join(dir, "old.db");
    try {
      version3(path, []);
      // Migration 1's defaults use unixepoch('subsec'), NULL before SQLite 3.42.
      assert.throws(() => plainSql(path, "INSERT INTO task_queue (type) VALUES ('email')"), /NOT NULL/);
      const db = new QueueDatabase(path);
      try {
        await db.initializeSchema();
        plainSql(path, "INSERT INTO task_queue (type, payload) VALUES ('email', '{}')");
        const [task] = await new Queue(db).list();
        assert.equal(task?.status, "queued");
        assert.ok(Math.abs(task.runAfter - Date.now()) < 60_000, `run_after ${task.runAfter} is about now`);
        const registry = new TaskHandlerRegistry();
        registry.registerHandler("email", () => {});
        await new WorkerEngine({ db, workerId: "w", handlerRegistry: registry }).runLoop({
          untilEmpty: true,
        });
        assert.equal((await new Queue(db).get(task.id))?.status, "completed");
      } finally {
        db.close();
      }
    } finally {
      remove();
    }
  });

  test("a database holding an id past 2^53 is not upgraded, with an error that says what to do", async () => {
    const { dir, remove } = makeTempDir();
    const path = join(dir, "old.db");
    try {
      version3(path, ["INSERT INTO task_queue (id, type) VALUES (9007199254740993, 'a')"]);
      const db = new QueueDatabase(path);
      try {
        const error = await rejectionOf(db.initializeSchema());
        assert.ok(error instanceof DatabaseError, String(error));
        assert.match(error.message, /Cannot upgrade this database to schema version 4: .*9007199254740991/);
      } finally {
        db.close();
      }
    } finally {
      remove();
    }
  });

  test("a database with its own task_queue table, not made by PrismQ, is refused by name", async () => {
    const { dir, remove } = makeTempDir();
    const path = join(dir, "foreign.db");
    try {
      const other = new Database(path);
      other.exec("CREATE TABLE task_queue (job TEXT)");
      other.close();
      const db = new QueueDatabase(path);
      try {
        const error = await rejectionOf(db.initializeSchema());
        assert.ok(error instanceof DatabaseError, String(error));
        assert.match(error.message, /already has a table 'task_queue' that PrismQ did not create/);
      } finally {
        db.close();
      }
    } finally {
      remove();
    }
  });
});
