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
import process from "node:process";
import Database from "libsql";
import {
  DatabaseError,
  type EnqueueOptions,
  isInvalidArgument,
  Queue,
  QueueDatabase,
  type Task,
  TaskHandlerRegistry,
  WorkerEngine,
  type WorkerEngineOptions,
} from "../mod.ts";
import { MAX_ERROR_LENGTH } from "../src/describe_error.ts";
import { MIGRATIONS } from "../src/store/sqlite/migrations.ts";
import { storeOf } from "../src/store/store_of.ts";
import { longTimeout } from "../src/timers.ts";
import { delay, makeTempDir, rejectionOf, waitFor, withDb } from "./_helpers.ts";

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
    ["leaderLeaseMs: 0", { leaderLeaseMs: 0 }, /leaderLeaseMs/],
    [
      "leaderLeaseMs under twice reapIntervalMs",
      { leaderLeaseMs: 1500, reapIntervalMs: 1000 },
      /leaderLeaseMs \(1500\) must be at least twice reapIntervalMs \(1000\)/,
    ],
    ["shutdownGraceMs: NaN", { shutdownGraceMs: NaN }, /shutdownGraceMs/],
    ["shutdownGraceMs: -1", { shutdownGraceMs: -1 }, /shutdownGraceMs/],
    ["types: []", { types: [] }, /non-empty array/],
    ["types with a blank type", { types: ["a", " "] }, /Task type cannot be empty/],
    ["types with a lone surrogate", { types: ["a\ud800"] }, /not well-formed Unicode/],
    ["retry.initialDelayMs: Infinity", { retry: { initialDelayMs: Infinity } }, /retry.initialDelayMs/],
    ["strategy: random", { strategy: "random" as never }, /Unknown strategy 'random'/],
    ["clock: {}", { clock: {} as never }, /clock must be/],
    ["pid: 1.5", { pid: 1.5 }, /pid must be/],
    [
      "handlerRegistry: {}",
      { handlerRegistry: {} as never },
      /handlerRegistry must be a TaskHandlerRegistry, got an object/,
    ],
    [
      "handlerRegistry: a Map",
      { handlerRegistry: new Map() as never },
      /handlerRegistry must be a TaskHandlerRegistry, got a Map/,
    ],
    ["workerId with a lone surrogate", { workerId: "w\ud800" }, /workerId is not well-formed Unicode/],
    ["host with a lone surrogate", { host: "h\udc00" }, /host is not well-formed Unicode/],
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

  test("every option WorkerEngine refuses, and a missing db or handler, is refused with code INVALID_ARGUMENT", async () => {
    await withDb(async (db) => {
      const registry = new TaskHandlerRegistry();
      const refusals: [string, () => unknown][] = [
        ...bad.map(([what, options]): [string, () => unknown] => [
          what,
          () => new WorkerEngine({ db, workerId: "w", handlerRegistry: registry, ...options }),
        ]),
        ["workerId: ''", () => new WorkerEngine({ db, workerId: "" })],
        ["db: {}", () => new WorkerEngine({ db: {} as never, workerId: "w" })],
        ["no handler to route with", () => new WorkerEngine({ db, workerId: "w" }).runLoop()],
        ["taskHandler: 42", () => new WorkerEngine({ db, workerId: "w" }).claimAndProcess(42 as never)],
      ];
      for (const [what, refuse] of refusals) {
        const error = await (async () => {
          try {
            await refuse();
          } catch (error) {
            return error;
          }
        })();
        assert.ok(error instanceof TypeError || error instanceof RangeError, `${what}: ${error}`);
        assert.equal(isInvalidArgument(error), true, `${what}: ${error}`);
      }
    });
  });

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

  const badQueue: [string, object, RegExp][] = [
    ["clock: {}", { clock: {} }, /clock must be a \{ now\(\), elapsed\?\(\) \} object, got an object/],
    [
      "clock: Date.now",
      { clock: Date.now },
      /clock must be a \{ now\(\), elapsed\?\(\) \} object, got a function/,
    ],
    ["clock with elapsed: 5", { clock: { now: Date.now, elapsed: 5 } }, /clock must be/],
    ["registry: a Map", { registry: new Map() }, /registry must be a TaskHandlerRegistry, got a Map/],
    ["registry: 'email'", { registry: "email" }, /registry must be a TaskHandlerRegistry, got a string/],
  ];
  for (const [what, options, message] of badQueue) {
    test(`Queue refuses ${what} when constructed`, async () => {
      await withDb((db) => {
        assert.throws(
          () => new Queue(db, options as never),
          (error: Error) => error instanceof TypeError && message.test(error.message),
        );
      });
    });
  }

  const badSignals: [string, unknown, RegExp][] = [
    ["an AbortController", new AbortController(), /signal must be an AbortSignal, got an AbortController/],
    ["true", true, /signal must be an AbortSignal, got a boolean/],
    ["{ aborted: false }", { aborted: false }, /signal must be an AbortSignal, got an object/],
  ];
  for (const [what, signal, message] of badSignals) {
    test(`runLoop refuses a signal that is ${what}, before starting`, async () => {
      await withDb(async (db) => {
        await new Queue(db).enqueue("t");
        let ran = 0;
        const worker = new WorkerEngine({ db, workerId: "w" });
        assert.throws(
          () => worker.runLoop({ signal: signal as never, taskHandler: () => void ran++ }),
          (error: Error) => error instanceof TypeError && message.test(error.message),
        );
        assert.equal(ran, 0);
        assert.equal((await new Queue(db).list())[0]?.status, "queued");
        // The engine is not left half-started: a good call runs.
        const summary = await worker.runLoop({ untilEmpty: true, taskHandler: () => void ran++ });
        assert.equal(summary.completed, 1);
      });
    });
  }

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
    [
      "priority: 1.5",
      { priority: 1.5 },
      /priority must be a whole number from -9007199254740991 to 9007199254740991, got 1\.5\.$/,
    ],
    [
      "priority: 2^53",
      { priority: 2 ** 53 },
      /priority must be a whole number from -9007199254740991 to 9007199254740991, got 9007199254740992\.$/,
    ],
    [
      "priority: -2^53",
      { priority: -(2 ** 53) },
      /priority must be a whole number from -9007199254740991 to 9007199254740991, got -9007199254740992\.$/,
    ],
    [
      "priority: '5'",
      { priority: "5" as never },
      /priority must be a whole number from -9007199254740991 to 9007199254740991, got a string\.$/,
    ],
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

describe("error and log text holding lone surrogates is stored as well-formed UTF-8, with U+FFFD in their place", () => {
  /** The stored bytes of one text column, checked to be UTF-8 and decoded. */
  async function storedText(db: QueueDatabase, sql: string): Promise<string[]> {
    const rows = await db.transaction(async (tx) => (await tx.execute(sql)).rows);
    const decoder = new TextDecoder("utf-8", { fatal: true });
    return rows.map((row) => {
      const hex = String(Object.values(row)[0]);
      return decoder.decode(new Uint8Array(hex.match(/../g)!.map((byte) => parseInt(byte, 16))));
    });
  }

  test("a handler's thrown message and its ctx.log text", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const task = await queue.enqueue("t", {}, { maxAttempts: 1 });
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("t", async (_task, ctx) => {
        await ctx.log("info", "log \ud800 text \udc00", { note: "details \ud800" });
        await ctx.log("warn", "a pair is kept: \u{1F600}");
        throw new Error("bad \udfff thing");
      });
      await new WorkerEngine({ db, workerId: "w", handlerRegistry: registry }).runLoop({ untilEmpty: true });
      const failed = await queue.get(task.id);
      assert.equal(failed?.status, "failed");
      assert.equal(failed?.errorMessage, "bad \ufffd thing");
      const logs = await queue.logs(task.id);
      assert.deepEqual(logs.map((log) => log.message), [
        "log \ufffd text \ufffd",
        "a pair is kept: \u{1F600}",
      ]);
      assert.deepEqual(logs[0]?.details, { note: "details \ud800" }, "details are JSON, which can escape it");
      assert.deepEqual(await storedText(db, "SELECT hex(error_message) FROM task_queue"), [
        "bad \ufffd thing",
      ]);
      assert.deepEqual(await storedText(db, "SELECT hex(message) FROM task_logs ORDER BY id"), [
        "log \ufffd text \ufffd",
        "a pair is kept: \u{1F600}",
      ]);
    });
  });

  test("an error message cut at the length limit keeps no half of a surrogate pair", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const task = await queue.enqueue("t", {}, { maxAttempts: 1 });
      const long = "x".repeat(MAX_ERROR_LENGTH - 1) + "\u{1F600}" + "y".repeat(10);
      await new WorkerEngine({ db, workerId: "w" }).runLoop({
        untilEmpty: true,
        taskHandler: () => {
          throw new Error(long);
        },
      });
      const [stored] = await storedText(db, "SELECT hex(error_message) FROM task_queue");
      assert.equal(stored, "x".repeat(MAX_ERROR_LENGTH - 1) + "…");
      assert.equal((await queue.get(task.id))?.errorMessage, stored);
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

  test("an idle worker polling every 25 days looks for tasks once, not in a busy loop, and no timer overflows", async () => {
    // In memory, so that no commit wakes the worker (a file's log is watched): from its first empty look on,
    // only its poll timer could make it look again. The window is counted in heartbeats, every 5 ms: a
    // timer cut to 1 ms would poll at least as often as they come.
    const db = new QueueDatabase(":memory:");
    const overflows: string[] = [];
    const onWarning = (warning: Error) => {
      if (warning.name === "TimeoutOverflowWarning") overflows.push(warning.message);
    };
    process.on("warning", onWarning);
    try {
      await db.initializeSchema();
      const store = storeOf(db) as unknown as Record<string, (...args: unknown[]) => unknown>;
      const calls = { looks: 0, heartbeats: 0 };
      // What the worker calls to look for tasks (the first calls taskClaim itself), and its heartbeat.
      for (const name of ["taskRecordAndClaim", "taskPending", "workerHeartbeat"]) {
        const original = store[name]!.bind(storeOf(db));
        store[name] = (...args: unknown[]) => {
          if (name === "workerHeartbeat") calls.heartbeats++;
          else calls.looks++;
          return original(...args);
        };
      }
      const worker = new WorkerEngine({
        db,
        workerId: "w",
        pollIntervalMs: 25 * DAY,
        reapIntervalMs: 25 * DAY,
        leaseMs: 60_000,
        heartbeatIntervalMs: 5,
      });
      const loop = worker.runLoop({ taskHandler: () => {} });
      await waitFor(() => calls.looks >= 1, 10_000, "the worker's first look");
      const heartbeats = calls.heartbeats;
      await waitFor(() => calls.heartbeats >= heartbeats + 20, 30_000, "20 more heartbeats");
      const looks = calls.looks;
      await worker.stop();
      await loop;
      assert.equal(looks, 1, `the idle worker looked for tasks ${looks} times in 20 heartbeats`);
      assert.deepEqual(overflows, []);
    } finally {
      process.off("warning", onWarning);
      await db.close();
    }
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

/**
 * Runs `insert` and asserts that the task it inserted is due at the time of the insert: between the clock
 * readings around it, however long it took (±1 ms, for SQLite's rounding to the millisecond).
 */
async function assertDueAtInsert(db: QueueDatabase, insert: () => void, what: string): Promise<Task> {
  const before = Date.now();
  insert();
  const after = Date.now();
  const [task] = await new Queue(db).list();
  assert.equal(task?.status, "queued", what);
  assert.ok(
    task.runAfter >= before - 1 && task.runAfter <= after + 1,
    `run_after ${task.runAfter} lies outside [${before}, ${after}]`,
  );
  return task;
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
      const task = await assertDueAtInsert(
        db,
        () => plainSql(path, "INSERT INTO task_queue (type, payload) VALUES ('email', '{}')"),
        `sqlite3 ${version}`,
      );
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
      const task = await assertDueAtInsert(
        db,
        () =>
          void execFileSync("python3", ["-c", PYTHON_INSERT, path], { stdio: ["ignore", "pipe", "pipe"] }),
        `Python's SQLite ${PYTHON_SQLITE}`,
      );
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

  const refusedLogs: [string, string][] = [
    [
      "a log id past 2^53",
      "INSERT INTO task_logs (id, task_id, at, level, message) VALUES (9007199254740992, 1, 5, 'info', 'm')",
    ],
    [
      "a log id of 0",
      "INSERT INTO task_logs (id, task_id, at, level, message) VALUES (0, 1, 5, 'info', 'm')",
    ],
    [
      "a fractional log time",
      "INSERT INTO task_logs (task_id, at, level, message) VALUES (1, 1.5, 'info', 'm')",
    ],
    ["a REAL log time", "INSERT INTO task_logs (task_id, at, level, message) VALUES (1, 1e300, 'info', 'm')"],
    [
      "a log time past a Date's range",
      "INSERT INTO task_logs (task_id, at, level, message) VALUES (1, 9000000000000000, 'info', 'm')",
    ],
    [
      "a log time as text",
      "INSERT INTO task_logs (task_id, at, level, message) VALUES (1, 'now', 'info', 'm')",
    ],
  ];
  for (const [what, sql] of refusedLogs) {
    test(`${what} is refused`, async () => {
      await withDb(async (db, path) => {
        plainSql(path, "INSERT INTO task_queue (id, type) VALUES (1, 'a')");
        assert.throws(() => plainSql(path, sql), /constraint failed|cannot store/i);
        assert.deepEqual(await new Queue(db).logs(1), []);
      });
    });
  }

  test("the next log id after 2^53 - 1 is refused, not rounded", async () => {
    await withDb(async (db, path) => {
      const task = await new Queue(db).enqueue("a");
      plainSql(
        path,
        `INSERT INTO task_logs (id, task_id, at, level, message) VALUES (9007199254740991, ${task.id}, 5, 'info', 'last')`,
      );
      const error = await rejectionOf(
        storeOf(db).taskLogAppend([{ taskId: task.id, at: Date.now(), level: "info", message: "next" }]),
      );
      assert.ok(error instanceof Error, String(error));
      assert.deepEqual((await new Queue(db).logs(task.id)).map((log) => [log.id, log.message]), [
        [Number.MAX_SAFE_INTEGER, "last"],
      ]);
    });
  });

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

/** A database as migrations 1 to `version` left it, with `rows` written by plain SQL afterwards. */
function migratedTo(version: number, path: string, rows: string[]): void {
  const old = new Database(path);
  old.exec(
    "CREATE TABLE prismq_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
  );
  for (const migration of MIGRATIONS.slice(0, version)) {
    old.exec(migration.sql);
    old.exec(`INSERT INTO prismq_migrations VALUES (${migration.version}, 'x', 0)`);
  }
  for (const row of rows) old.exec(row);
  old.close();
}

describe("migration 4: stricter values for databases made before it", () => {
  /** A database as migrations 1 to 3 left it. */
  const version3 = (path: string, rows: string[]) => migratedTo(3, path, rows);

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
        await db.close();
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
        const task = await assertDueAtInsert(
          db,
          () => plainSql(path, "INSERT INTO task_queue (type, payload) VALUES ('email', '{}')"),
          "after the upgrade",
        );
        const registry = new TaskHandlerRegistry();
        registry.registerHandler("email", () => {});
        await new WorkerEngine({ db, workerId: "w", handlerRegistry: registry }).runLoop({
          untilEmpty: true,
        });
        assert.equal((await new Queue(db).get(task.id))?.status, "completed");
      } finally {
        await db.close();
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
        await db.close();
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
        await db.close();
      }
    } finally {
      remove();
    }
  });
});

describe("migration 5: task logs get the checks tasks have", () => {
  test("keeps every log, brings times written before it into range, and never reuses a log id", async () => {
    const { dir, remove } = makeTempDir();
    const path = join(dir, "old.db");
    try {
      migratedTo(4, path, [
        // Two tasks: purge keeps the newest.
        "INSERT INTO task_queue (id, type) VALUES (1, 'a'), (2, 'b')",
        "INSERT INTO task_logs (task_id, at, level, message, details) VALUES (1, 5, 'info', 'kept', '{\"n\":1}')",
        "INSERT INTO task_logs (task_id, at, level, message) VALUES (1, 7.6, 'warn', 'fraction')",
        "INSERT INTO task_logs (task_id, at, level, message) VALUES (1, 1e300, 'error', 'far')",
        "INSERT INTO task_logs (task_id, at, level, message) VALUES (1, -1e300, 'debug', 'long ago')",
        // The newest log goes: its id must not be given to the next one.
        "INSERT INTO task_logs (id, task_id, at, level, message) VALUES (40, 1, 9, 'info', 'gone')",
        "DELETE FROM task_logs WHERE id = 40",
      ]);
      const db = new QueueDatabase(path);
      try {
        await db.initializeSchema();
        const queue = new Queue(db);
        assert.deepEqual((await queue.logs(1)).map((log) => [log.id, log.at, log.level, log.message]), [
          [1, 5, "info", "kept"],
          [2, 7, "warn", "fraction"],
          [3, 8.64e15, "error", "far"],
          [4, -8.64e15, "debug", "long ago"],
        ]);
        assert.deepEqual((await queue.logs(1))[0]?.details, { n: 1 });
        await storeOf(db).taskLogAppend([{ taskId: 1, at: 10, level: "info", message: "after" }]);
        assert.equal((await queue.logs(1)).at(-1)?.id, 41);
        // Still the task's: purging it takes its logs along.
        await queue.cancel(1);
        const tomorrow = new Queue(db, { clock: { now: () => Date.now() + DAY } });
        assert.equal(await tomorrow.purge({ statuses: ["cancelled"], olderThanMs: 0 }), 1);
        assert.deepEqual(await queue.logs(1), []);
      } finally {
        await db.close();
      }
      assert.throws(
        () =>
          plainSql(path, "INSERT INTO task_logs (task_id, at, level, message) VALUES (1, 1.5, 'info', 'm')"),
        /constraint failed|cannot store/i,
      );
    } finally {
      remove();
    }
  });

  test("a process that prepared its log insert before the upgrade goes on writing logs after it", async () => {
    const { dir, remove } = makeTempDir();
    const path = join(dir, "old.db");
    try {
      migratedTo(4, path, ["INSERT INTO task_queue (id, type) VALUES (1, 'a')"]);
      // Another process, still on version 4, with its statement prepared against the old table.
      const running = new Database(path);
      const insert = running.prepare(
        "INSERT INTO task_logs (task_id, at, level, message) VALUES (1, ?, 'info', ?)",
      );
      insert.run(1000, "before");
      const db = new QueueDatabase(path);
      try {
        await db.initializeSchema();
        insert.run(2000, "after");
        assert.deepEqual((await new Queue(db).logs(1)).map((log) => [log.id, log.at, log.message]), [
          [1, 1000, "before"],
          [2, 2000, "after"],
        ]);
      } finally {
        await db.close();
        running.close();
      }
    } finally {
      remove();
    }
  });

  test("a database holding a log id past 2^53 is not upgraded, with an error that says what to do", async () => {
    const { dir, remove } = makeTempDir();
    const path = join(dir, "old.db");
    try {
      migratedTo(4, path, [
        "INSERT INTO task_queue (id, type) VALUES (1, 'a')",
        "INSERT INTO task_logs (id, task_id, at, level, message) VALUES (9007199254740993, 1, 5, 'info', 'm')",
      ]);
      const db = new QueueDatabase(path);
      try {
        const error = await rejectionOf(db.initializeSchema());
        assert.ok(error instanceof DatabaseError, String(error));
        assert.match(
          error.message,
          /Cannot upgrade this database to schema version 5: .*task logs .*9007199254740991.*delete them/,
        );
      } finally {
        await db.close();
      }
      // Nothing of the migration was applied.
      const old = new Database(path);
      try {
        const versions = old.prepare("SELECT max(version) AS v FROM prismq_migrations").get() as {
          v: number;
        };
        assert.equal(versions.v, 4);
      } finally {
        old.close();
      }
    } finally {
      remove();
    }
  });
});
