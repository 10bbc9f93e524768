/**
 * Integration tests of the producer and admin side (`Queue`) and of `QueueDatabase`, on a real file.
 *
 * @module
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import * as v from "valibot";
import {
  DatabaseError,
  DEFAULT_MAX_PAYLOAD_BYTES,
  defineHandler,
  type ManualClock,
  NonRetryableError,
  PayloadTooLargeError,
  PayloadValidationError,
  Queue,
  QueueDatabase,
  type Task,
  type TaskHandler,
  TaskHandlerNotRegisteredError,
  TaskHandlerRegistry,
  TaskNotFoundError,
  TaskStateError,
  WorkerEngine,
} from "../mod.ts";
import { storeOf } from "../src/store/store_of.ts";
import { JSON_PAYLOADS, makeTempDir, T0, TASK_FIELDS, withDb, withQueueAtT0 } from "./_helpers.ts";

type ErrorClass = new (...args: never[]) => Error;

/** Asserts that awaiting `fn()` fails with an instance of `Class` whose message matches `pattern`. */
async function rejectsWith(fn: () => unknown, Class: ErrorClass, pattern?: RegExp): Promise<Error> {
  let caught: Error | undefined;
  await assert.rejects(async () => await fn(), (error: unknown) => {
    assert.ok(error instanceof Class, `expected a ${Class.name}, got ${String(error)}`);
    if (pattern) assert.match(error.message, pattern);
    caught = error;
    return true;
  });
  return caught!;
}

/** How many rows a table holds, read with raw SQL. */
async function countRows(db: QueueDatabase, table: "task_queue" | "task_logs"): Promise<number> {
  const result = await db.transaction((tx) => tx.execute(`SELECT count(*) AS n FROM ${table}`));
  return Number(result.rows[0].n);
}

async function assertNothingWritten(queue: Queue): Promise<void> {
  assert.deepEqual(await queue.list(), []);
  const stats = await queue.stats();
  assert.deepEqual(stats.counts, {
    waiting: 0,
    queued: 0,
    running: 0,
    completed: 0,
    failed: 0,
    cancelled: 0,
  });
  assert.equal(await countRows(queue.db, "task_queue"), 0);
}

/** Claims one task with a one-off worker and runs `handler` on it. */
async function runOne(db: QueueDatabase, handler: TaskHandler, clock?: ManualClock): Promise<boolean> {
  const worker = new WorkerEngine({ db, workerId: "test-worker", clock, random: () => 0.5 });
  return await worker.claimAndProcess(handler);
}

const complete: TaskHandler = () => {};
const failForGood: TaskHandler = () => {
  throw new NonRetryableError("broken for good");
};

describe("Queue.enqueue", () => {
  test("returns a task with every field, its payload parsed, status queued and integer epoch-ms times", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const before = Date.now();
      const task = await queue.enqueue("send_email", { to: "ada@example.com", tags: ["a", "b"], n: 1.5 });
      const after = Date.now();
      assert.deepEqual(Object.keys(task).sort(), TASK_FIELDS);
      assert.ok(Number.isSafeInteger(task.id) && task.id >= 1);
      assert.equal(task.type, "send_email");
      assert.deepEqual(task.payload, { to: "ada@example.com", tags: ["a", "b"], n: 1.5 });
      assert.equal(task.status, "queued");
      assert.equal(task.priority, 100);
      assert.equal(task.attempts, 0);
      assert.equal(task.maxAttempts, 5);
      assert.equal(task.errorMessage, null);
      assert.equal(task.idempotencyKey, null);
      assert.equal(task.lockedBy, null);
      assert.equal(task.timeoutMs, null);
      assert.equal(task.leaseUntil, null);
      assert.equal(task.startedAt, null);
      assert.equal(task.finishedAt, null);
      for (const time of [task.createdAt, task.updatedAt, task.runAfter]) {
        assert.ok(Number.isInteger(time), `${time} is an integer`);
        assert.ok(time >= before && time <= after, `${time} lies in [${before}, ${after}]`);
      }
      assert.equal(task.runAfter, task.createdAt);
      // What enqueue returned is what was stored.
      assert.deepEqual(await queue.get(task.id), task);
    });
  });

  test("a payload left out is stored as an empty object", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const task = await queue.enqueue("ping");
      assert.deepEqual(task.payload, {});
      assert.deepEqual((await queue.get(task.id))?.payload, {});
    });
  });

  test("stores the priority, maxAttempts, idempotency key and timeout it is given", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const task = await queue.enqueue("report", [1, "two", null], {
        priority: -7,
        maxAttempts: 2,
        idempotencyKey: "report-2030-01",
        timeoutMs: 1500,
      });
      const stored = await queue.get(task.id);
      assert.ok(stored);
      assert.deepEqual(stored.payload, [1, "two", null]);
      assert.equal(stored.priority, -7);
      assert.equal(stored.maxAttempts, 2);
      assert.equal(stored.idempotencyKey, "report-2030-01");
      assert.equal(stored.timeoutMs, 1500);
      assert.deepEqual(stored, task);
    });
  });

  test("accepts runAt as a Date, as epoch milliseconds and as an ISO-8601 string", async () => {
    await withQueueAtT0(async ({ queue }) => {
      const at = Date.UTC(2030, 0, 31, 9, 0, 0);
      const cases: [string, Date | number | string][] = [
        ["Date", new Date(at)],
        ["epoch ms", at],
        ["ISO UTC", "2030-01-31T09:00:00Z"],
        ["ISO with offset", "2030-01-31T10:00:00+01:00"],
        ["ISO with milliseconds", "2030-01-31T09:00:00.000Z"],
      ];
      for (const [what, runAt] of cases) {
        const task = await queue.enqueue("later", {}, { runAt });
        assert.equal(task.runAfter, at, what);
        assert.equal((await queue.get(task.id))?.runAfter, at, what);
        assert.equal(task.createdAt, T0, what);
      }
    });
  });

  test("delayMs schedules the task relative to the queue's clock", async () => {
    await withQueueAtT0(async ({ queue }) => {
      const task = await queue.enqueue("later", {}, { delayMs: 1500 });
      assert.equal(task.createdAt, T0);
      assert.equal(task.runAfter, T0 + 1500);
      const zero = await queue.enqueue("now", {}, { delayMs: 0 });
      assert.equal(zero.runAfter, T0);
    });
  });

  test("rejects options that make no sense, with a TypeError or RangeError, and writes nothing", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      await rejectsWith(
        () => queue.enqueue("a", {}, { runAt: Date.now(), delayMs: 10 }),
        TypeError,
        /runAt or delayMs, not both/,
      );
      await rejectsWith(() => queue.enqueue("a", {}, { delayMs: -1 }), RangeError, /delayMs/);
      await rejectsWith(() => queue.enqueue("a", {}, { delayMs: NaN }), RangeError, /delayMs/);
      await rejectsWith(() => queue.enqueue("a", {}, { priority: 1.5 }), RangeError, /priority/);
      await rejectsWith(() => queue.enqueue("a", {}, { priority: NaN }), RangeError, /priority/);
      await rejectsWith(() => queue.enqueue("a", {}, { maxAttempts: 0 }), RangeError, /maxAttempts/);
      await rejectsWith(() => queue.enqueue("a", {}, { maxAttempts: 2.5 }), RangeError, /maxAttempts/);
      await rejectsWith(() => queue.enqueue("a", {}, { timeoutMs: 0 }), RangeError, /timeoutMs/);
      await rejectsWith(() => queue.enqueue("a", {}, { runAt: "next tuesday" }), RangeError, /runAt/);
      await rejectsWith(() => queue.enqueue("a", {}, { runAt: "2030-13-45T99:00:00Z" }), RangeError, /runAt/);
      await rejectsWith(() => queue.enqueue("a", {}, { runAt: new Date("nope") }), RangeError, /runAt/);
      await rejectsWith(() => queue.enqueue("a", {}, { runAt: Infinity }), RangeError, /runAt/);
      await rejectsWith(() => queue.enqueue("a", {}, { idempotencyKey: "" }), TypeError, /idempotencyKey/);
      await rejectsWith(() => queue.enqueue("", {}), TypeError, /empty/);
      await rejectsWith(() => queue.enqueue(" padded ", {}), TypeError, /whitespace/);
      await rejectsWith(() => queue.enqueue("a", {}, 5 as never), TypeError, /options must be an object/);
      await rejectsWith(() => queue.enqueue("a", {}, { priority: "1" as never }), TypeError, /priority/);
      await rejectsWith(
        () => queue.enqueue("a", {}, { maxAttempts: "5" as never }),
        TypeError,
        /maxAttempts/,
      );
      await assertNothingWritten(queue);
    });
  });

  test("an insert that something in the database discards (a trigger) is an error, not an endless retry", async () => {
    await withDb(async (db) => {
      await db.transaction((tx) =>
        tx.execute("CREATE TRIGGER discard BEFORE INSERT ON task_queue BEGIN SELECT RAISE(IGNORE); END")
      );
      await assert.rejects(new Queue(db).enqueue("a", {}), (error: Error) => {
        assert.ok(error instanceof DatabaseError, String(error));
        assert.match(error.message, /no idempotency or unique key explains why/);
        return true;
      });
    });
  });

  test("rejects a payload that cannot be written as JSON, such as a BigInt or a function", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      await rejectsWith(() => queue.enqueue("a", { n: 10n }), TypeError, /cannot be written as JSON/);
      await rejectsWith(() => queue.enqueue("a", 10n), TypeError, /cannot be written as JSON/);
      await rejectsWith(() => queue.enqueue("a", () => 1), TypeError, /cannot be written as JSON/);
      await rejectsWith(() => queue.enqueue("a", Symbol("s")), TypeError, /cannot be written as JSON/);
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      await rejectsWith(() => queue.enqueue("a", cyclic), TypeError, /cannot be written as JSON/);
      await assertNothingWritten(queue);
    });
  });
});

describe("Queue.enqueueMany", () => {
  test("writes nothing when one item is invalid, and the error says which item", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      await rejectsWith(
        () =>
          queue.enqueueMany([
            { type: "a", payload: { i: 1 } },
            { type: "a", payload: { i: 2 } },
            { type: "a", payload: { i: 3 }, priority: 1.5 },
            { type: "a", payload: { i: 4 } },
          ]),
        RangeError,
        /^Task 3: priority/,
      );
      await rejectsWith(
        () => queue.enqueueMany([{ type: "a" }, { type: "b", payload: { big: 1n } }]),
        TypeError,
        /^Task 2: .*JSON/,
      );
      await assertNothingWritten(queue);
    });
  });

  test("returns the tasks in the order given, with ids in insertion order", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const tasks = await queue.enqueueMany([
        { type: "c", payload: { i: 0 }, priority: 300 },
        { type: "a", payload: { i: 1 }, priority: 1, idempotencyKey: "key-1" },
        { type: "b", payload: { i: 2 }, priority: 200 },
        { type: "a", payload: { i: 3 } },
      ]);
      assert.deepEqual(tasks.map((t) => t.type), ["c", "a", "b", "a"]);
      assert.deepEqual(tasks.map((t) => t.payload), [{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }]);
      assert.deepEqual(tasks.map((t) => t.priority), [300, 1, 200, 100]);
      const first = tasks[0].id;
      assert.deepEqual(tasks.map((t) => t.id), [first, first + 1, first + 2, first + 3]);
      for (const task of tasks) assert.deepEqual(await queue.get(task.id), task);
    });
  });

  test("a batch that differs only in payloads stores every kind of JSON payload exactly", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const tasks = await queue.enqueueMany(JSON_PAYLOADS.map((payload) => ({ type: "a", payload })));
      assert.deepEqual(
        tasks.map((task) => task.payload),
        JSON_PAYLOADS.map((p) => JSON.parse(JSON.stringify(p))),
      );
      for (const task of tasks) assert.deepEqual(await queue.get(task.id), task);
    });
  });

  test("a batch alike but for one field of its last task stores that field as given", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const same = { type: "a", priority: 5, maxAttempts: 3, delayMs: 60_000, timeoutMs: 1_000 };
      const variants: [keyof typeof same, unknown][] = [
        ["type", "b"],
        ["priority", 6],
        ["maxAttempts", 4],
        ["delayMs", 120_000],
        ["timeoutMs", 2_000],
      ];
      for (const [field, value] of variants) {
        const items = [{ ...same, payload: { i: 1 } }, { ...same, payload: { i: 2 } }, {
          ...same,
          [field]: value,
          payload: { i: 3 },
        }];
        const tasks = await queue.enqueueMany(items as Parameters<Queue["enqueueMany"]>[0]);
        const stored = await Promise.all(tasks.map((task) => queue.get(task.id)));
        assert.deepEqual(stored, tasks, field);
        const [first, , last] = stored;
        const column = field === "delayMs" ? "runAfter" : field;
        assert.notEqual(last![column], first![column], `${field} of the last task`);
        if (field === "delayMs") assert.equal(last!.runAfter - first!.runAfter, 60_000);
        else assert.equal(last![column], value, field);
      }
    });
  });

  test("an async payload schema is checked for every task of a batch, and a failure writes nothing", async () => {
    await withDb(async (db) => {
      const registry = new TaskHandlerRegistry();
      registry.registerHandler(defineHandler({
        type: "signup",
        schema: v.objectAsync({
          name: v.pipeAsync(
            v.string(),
            v.checkAsync((name) => Promise.resolve(name !== "admin"), "is taken"),
          ),
        }),
        handle: () => {},
      }));
      const queue = new Queue(db, { registry });
      await rejectsWith(
        () =>
          queue.enqueueMany([
            { type: "signup", payload: { name: "ada" } },
            { type: "signup", payload: { name: "admin" } },
          ]),
        PayloadValidationError,
        /^Task 2: .*name: is taken/,
      );
      await assertNothingWritten(queue);
      const tasks = await queue.enqueueMany([
        { type: "signup", payload: { name: "ada" } },
        { type: "signup", payload: { name: "grace" } },
      ]);
      assert.deepEqual(tasks.map((task) => task.payload), [{ name: "ada" }, { name: "grace" }]);
    });
  });

  test("an empty list writes nothing and returns nothing", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      assert.deepEqual(await queue.enqueueMany([]), []);
      await assertNothingWritten(queue);
    });
  });

  test("a batch of 12,000 tasks spans several insert chunks and returns every id in order", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const n = 12_000;
      const items = Array.from({ length: n }, (_, i) => ({
        type: i % 2 ? "odd" : "even",
        payload: { i },
        // The same key early in the first chunk and late in the second: one task.
        ...(i === 100 || i === 7000 ? { idempotencyKey: "dup" } : {}),
      }));
      const tasks = await queue.enqueueMany(items);
      assert.equal(tasks.length, n);
      assert.equal(tasks[7000].id, tasks[100].id);
      assert.deepEqual(tasks[7000].payload, { i: 100 });
      const distinct = tasks.filter((_, i) => i !== 7000);
      for (let i = 1; i < distinct.length; i++) {
        assert.ok(distinct[i].id > distinct[i - 1].id, `id of item ${i} grows`);
      }
      for (const [i, task] of tasks.entries()) {
        if (i !== 7000) assert.deepEqual(task.payload, { i }, `item ${i}`);
      }
      // The stored rows agree with what came back, id for id.
      const stored = await queue.list({ limit: n });
      assert.equal(stored.length, n - 1);
      const payloadById = new Map(stored.map((t) => [t.id, t.payload]));
      for (const task of distinct) assert.deepEqual(payloadById.get(task.id), task.payload);
      const stats = await queue.stats();
      assert.equal(stats.counts.queued, n - 1);
      // Items 100 and 7000, which share a key, are both "even".
      assert.equal(stats.byType.even.queued, n / 2 - 1);
      assert.equal(stats.byType.odd.queued, n / 2);
    });
  });
});

describe("idempotency keys", () => {
  test("a second enqueue with the same key returns the existing task and writes no second row", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const first = await queue.enqueue("charge", { amount: 10 }, { idempotencyKey: "order-42" });
      const second = await queue.enqueue("charge", { amount: 99 }, {
        idempotencyKey: "order-42",
        priority: 1,
      });
      assert.equal(second.id, first.id);
      assert.deepEqual(second, first);
      assert.deepEqual(second.payload, { amount: 10 });
      assert.equal(await countRows(db, "task_queue"), 1);
    });
  });

  test("the existing task is returned even once it has finished", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const first = await queue.enqueue("charge", {}, { idempotencyKey: "order-7" });
      assert.equal(await runOne(db, complete), true);
      const again = await queue.enqueue("charge", {}, { idempotencyKey: "order-7" });
      assert.equal(again.id, first.id);
      assert.equal(again.status, "completed");
      assert.equal(await countRows(db, "task_queue"), 1);
    });
  });

  test("items sharing a key within one enqueueMany become one task", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const tasks = await queue.enqueueMany([
        { type: "a", payload: { v: 1 }, idempotencyKey: "k1" },
        { type: "a", payload: { v: 2 }, idempotencyKey: "k1" },
        { type: "a", payload: { v: 3 } },
      ]);
      assert.equal(tasks[1].id, tasks[0].id);
      assert.deepEqual(tasks[1].payload, { v: 1 });
      assert.notEqual(tasks[2].id, tasks[0].id);
      assert.equal(await countRows(db, "task_queue"), 2);
    });
  });

  test("enqueueManyDetailed says which tasks were created and which already existed", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const first = await queue.enqueueManyDetailed([
        { type: "a", idempotencyKey: "k1" },
        { type: "a", idempotencyKey: "k1" },
        { type: "a" },
      ]);
      assert.deepEqual(first.map((r) => r.created), [true, false, true]);
      const second = await queue.enqueueManyDetailed([
        { type: "a", idempotencyKey: "k2" },
        { type: "a", idempotencyKey: "k1" },
      ]);
      assert.deepEqual(second.map((r) => r.created), [true, false]);
      assert.equal(second[1].task.id, first[0].task.id);
      assert.equal(await countRows(db, "task_queue"), 3);
    });
  });

  test("enqueueManyIds gives each task's id and whether it was created, as enqueueManyDetailed would", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const [existing] = await queue.enqueueMany([{ type: "a", payload: { n: 0 }, idempotencyKey: "k1" }]);
      const items = [
        { type: "a", payload: { n: 1 } },
        { type: "b", payload: { n: 2 }, idempotencyKey: "k1" },
        { type: "a", payload: { n: 3 }, idempotencyKey: "k2" },
        { type: "a", payload: { n: 4 }, idempotencyKey: "k2" },
        { type: "b", payload: { n: 5 }, priority: 7 },
      ];
      const results = await queue.enqueueManyIds(items);
      assert.deepEqual(results.map((r) => r.created), [true, false, true, false, true]);
      assert.equal(results[1].id, existing.id, "a taken key gives the task that holds it");
      assert.equal(
        results[3].id,
        results[2].id,
        "the second use of a key in one call gives the first's task",
      );
      for (const [i, { id, created }] of results.entries()) {
        if (!created) continue;
        const stored = await queue.get(id);
        assert.equal(stored?.type, items[i].type);
        assert.deepEqual(stored?.payload, items[i].payload);
      }
      // Plain tasks only, many at once: the bulk path.
      const bulk = await queue.enqueueManyIds(
        Array.from({ length: 12_000 }, (_, n) => ({ type: "a", payload: { n } })),
      );
      assert.equal(new Set(bulk.map((r) => r.id)).size, 12_000);
      assert.deepEqual((await queue.get(bulk[11_999].id))?.payload, { n: 11_999 });
      // Invalid input refuses the whole call, as enqueueMany does.
      await assert.rejects(() => queue.enqueueManyIds([{ type: "a" }, { type: "" }]), /Task 2/);
    });
  });
});

describe("a queue bound to a registry", () => {
  function registry(): TaskHandlerRegistry {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("b", () => {});
    registry.registerHandler("a", () => {});
    registry.registerHandler(defineHandler({
      type: "email",
      schema: v.object({ to: v.pipe(v.string(), v.email()), count: v.number() }),
      handle: () => {},
    }));
    return registry;
  }

  test("refuses an unknown type, listing the registered types, before writing anything", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db, { registry: registry() });
      const error = await rejectsWith(
        () => queue.enqueue("c", {}),
        TaskHandlerNotRegisteredError,
      );
      assert.equal(
        error.message,
        "No handler registered for task type 'c'. Registered types: ['a', 'b', 'email']",
      );
      await rejectsWith(
        () => queue.enqueueMany([{ type: "a" }, { type: "b" }, { type: "nope" }]),
        TaskHandlerNotRegisteredError,
        /^Task 3: No handler registered for task type 'nope'/,
      );
      await assertNothingWritten(queue);
    });
  });

  test("refuses a payload that fails its handler's schema, naming the fields, before writing anything", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db, { registry: registry() });
      const error = await rejectsWith(
        () => queue.enqueue("email", { to: "not an address" }),
        PayloadValidationError,
        /^Invalid payload for task type 'email': /,
      );
      const paths = (error as PayloadValidationError).issues.map((issue) => issue.path).sort();
      assert.deepEqual(paths, ["count", "to"]);
      assert.match(error.message, /\bto: /);
      assert.match(error.message, /\bcount: /);
      await rejectsWith(
        () => queue.enqueueMany([{ type: "a" }, { type: "email", payload: { to: "x@example.com" } }]),
        PayloadValidationError,
        /^Task 2: .*count/,
      );
      await assertNothingWritten(queue);
    });
  });

  test("accepts a registered type with a valid payload", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db, { registry: registry() });
      const task = await queue.enqueue("email", { to: "ada@example.com", count: 2 });
      assert.deepEqual((await queue.get(task.id))?.payload, { to: "ada@example.com", count: 2 });
      await queue.enqueue("a");
      assert.equal((await queue.stats()).counts.queued, 2);
    });
  });
});

describe("payload size limit", () => {
  test("refuses a payload over maxPayloadBytes, counting multi-byte UTF-8 characters in bytes", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db, { maxPayloadBytes: 100 });
      // {"s":"…"} is 8 bytes of JSON around the string; "€" is one UTF-16 unit but three UTF-8 bytes.
      const fits = await queue.enqueue("a", { s: "€".repeat(30) }); // 98 bytes
      assert.deepEqual(fits.payload, { s: "€".repeat(30) });
      const error = await rejectsWith(
        () => queue.enqueue("a", { s: "€".repeat(31) }), // 101 bytes, only 39 characters
        PayloadTooLargeError,
        /101 bytes, over the limit of 100 bytes/,
      );
      assert.equal((error as PayloadTooLargeError).sizeBytes, 101);
      assert.equal((error as PayloadTooLargeError).limitBytes, 100);
      await queue.enqueue("a", { s: "x".repeat(92) }); // exactly 100 bytes
      await rejectsWith(() => queue.enqueue("a", { s: "x".repeat(93) }), PayloadTooLargeError);
      assert.equal(await countRows(db, "task_queue"), 2);
    });
  });

  test("the default limit is 1 MiB", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      assert.equal(DEFAULT_MAX_PAYLOAD_BYTES, 1024 * 1024);
      await queue.enqueue("a", "x".repeat(DEFAULT_MAX_PAYLOAD_BYTES - 2)); // the quotes make it exactly 1 MiB
      await rejectsWith(
        () => queue.enqueue("a", "x".repeat(DEFAULT_MAX_PAYLOAD_BYTES - 1)),
        PayloadTooLargeError,
      );
      assert.equal(await countRows(db, "task_queue"), 1);
    });
  });

  test("a limit that is not a whole number above zero is refused", async () => {
    await withDb((db) => {
      assert.throws(() => new Queue(db, { maxPayloadBytes: 0 }), RangeError);
      assert.throws(() => new Queue(db, { maxPayloadBytes: 1.5 }), RangeError);
      return Promise.resolve();
    });
  });
});

describe("Queue.get and Queue.list", () => {
  test("get returns undefined for a task that does not exist", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      assert.equal(await queue.get(12345), undefined);
    });
  });

  test("list returns tasks newest first, filtered by status and type, with limit and offset", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const [a1, b1, a2, b2, a3] = await queue.enqueueMany([
        { type: "a" },
        { type: "b" },
        { type: "a" },
        { type: "b" },
        { type: "a" },
      ]);
      await queue.cancel(a2.id);
      const ids = (tasks: Task[]) => tasks.map((t) => t.id);
      assert.deepEqual(ids(await queue.list()), [a3.id, b2.id, a2.id, b1.id, a1.id]);
      assert.deepEqual(ids(await queue.list({ type: "a" })), [a3.id, a2.id, a1.id]);
      assert.deepEqual(ids(await queue.list({ status: "cancelled" })), [a2.id]);
      assert.deepEqual(ids(await queue.list({ status: "queued", type: "a" })), [a3.id, a1.id]);
      assert.deepEqual(ids(await queue.list({ status: "completed" })), []);
      assert.deepEqual(ids(await queue.list({ type: "zzz" })), []);
      assert.deepEqual(ids(await queue.list({ limit: 2 })), [a3.id, b2.id]);
      assert.deepEqual(ids(await queue.list({ limit: 2, offset: 1 })), [b2.id, a2.id]);
      assert.deepEqual(ids(await queue.list({ offset: 4 })), [a1.id]);
      assert.deepEqual(ids(await queue.list({ offset: 5 })), []);
    });
  });

  test("list refuses an unknown status with a TypeError, and a limit below one with a RangeError", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      await rejectsWith(
        // @ts-expect-error: a status that does not exist
        () => queue.list({ status: "processing" }),
        TypeError,
        /Unknown status 'processing'/,
      );
      await rejectsWith(() => queue.list({ limit: 0 }), RangeError, /limit/);
      await rejectsWith(() => queue.list({ offset: -1 }), RangeError, /offset/);
    });
  });
});

describe("Queue.cancel", () => {
  test("cancels a queued task, which no worker then claims", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const task = await queue.enqueue("a");
      clock.advance(10);
      const cancelled = await queue.cancel(task.id);
      assert.equal(cancelled.status, "cancelled");
      assert.equal(cancelled.finishedAt, T0 + 10);
      assert.deepEqual(await queue.get(task.id), cancelled);
      let ran = false;
      assert.equal(await runOne(db, () => void (ran = true), clock), false);
      assert.equal(ran, false);
    });
  });

  test("refuses to cancel a completed or cancelled task with a TaskStateError", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const done = await queue.enqueue("a");
      assert.equal(await runOne(db, complete), true);
      const error = await rejectsWith(() => queue.cancel(done.id), TaskStateError);
      assert.equal(
        error.message,
        `Cannot cancel task ${done.id}: it is 'completed', and only 'waiting', 'queued' or 'running' tasks can be cancelled.`,
      );
      assert.equal((error as TaskStateError).status, "completed");
      assert.equal((await queue.get(done.id))?.status, "completed");

      const other = await queue.enqueue("a");
      await queue.cancel(other.id);
      await rejectsWith(() => queue.cancel(other.id), TaskStateError, /it is 'cancelled'/);
    });
  });

  test("cancelling a task that does not exist throws TaskNotFoundError", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const error = await rejectsWith(() => queue.cancel(999), TaskNotFoundError, /No task with id 999/);
      assert.equal((error as TaskNotFoundError).taskId, 999);
    });
  });
});

describe("Queue.retry and Queue.retryFailed", () => {
  test("puts a failed task back in the queue, runnable now, with its attempts reset", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const task = await queue.enqueue("a", {}, { maxAttempts: 3 });
      assert.equal(await runOne(db, failForGood, clock), true);
      const failed = await queue.get(task.id);
      assert.equal(failed?.status, "failed");
      assert.equal(failed?.attempts, 1);
      clock.advance(5000);
      const retried = await queue.retry(task.id);
      assert.equal(retried.status, "queued");
      assert.equal(retried.attempts, 0);
      assert.equal(retried.runAfter, T0 + 5000);
      assert.equal(retried.finishedAt, null);
      assert.deepEqual(await queue.get(task.id), retried);
      // It runs again, as a first attempt.
      let attempt = 0;
      assert.equal(await runOne(db, (_task, ctx) => void (attempt = ctx.attempt), clock), true);
      assert.equal(attempt, 1);
      assert.equal((await queue.get(task.id))?.status, "completed");
    });
  });

  test("puts a cancelled task back in the queue", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const task = await queue.enqueue("a");
      await queue.cancel(task.id);
      const retried = await queue.retry(task.id);
      assert.equal(retried.status, "queued");
      assert.equal(retried.finishedAt, null);
    });
  });

  test("refuses to retry a queued or completed task, and a missing one", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const queued = await queue.enqueue("a");
      const error = await rejectsWith(() => queue.retry(queued.id), TaskStateError);
      assert.equal(
        error.message,
        `Cannot retry task ${queued.id}: it is 'queued', and only 'failed' or 'cancelled' tasks can be retried.`,
      );
      assert.equal(await runOne(db, complete), true);
      await rejectsWith(() => queue.retry(queued.id), TaskStateError, /it is 'completed'/);
      await rejectsWith(() => queue.retry(424242), TaskNotFoundError);
    });
  });

  test("retryFailed requeues every failed task, or only those of one type", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const tasks = await queue.enqueueMany([{ type: "a" }, { type: "a" }, { type: "b" }, { type: "c" }]);
      for (let i = 0; i < 3; i++) assert.equal(await runOne(db, failForGood), true);
      assert.equal(await runOne(db, complete), true);
      assert.equal(await queue.retryFailed({ type: "a" }), 2);
      const status = async (i: number) => (await queue.get(tasks[i].id))?.status;
      assert.deepEqual(
        [await status(0), await status(1), await status(2), await status(3)],
        ["queued", "queued", "failed", "completed"],
      );
      assert.equal((await queue.get(tasks[0].id))?.attempts, 0);
      assert.equal(await queue.retryFailed({ type: "a" }), 0);
      assert.equal(await queue.retryFailed(), 1);
      assert.equal(await status(2), "queued");
      assert.equal(await status(3), "completed");
    });
  });
});

describe("Queue.purge", () => {
  test("deletes tasks that finished with the given statuses longer ago than olderThanMs, with their logs", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const worker = new WorkerEngine({ db, workerId: "w", clock });
      const logAndComplete: TaskHandler = async (task, ctx) => {
        await ctx.log("info", `ran ${task.payload.name}`);
      };
      const oldDone = await queue.enqueue("a", { name: "old done" });
      assert.equal(await worker.claimAndProcess(logAndComplete), true);
      const oldFailed = await queue.enqueue("a", { name: "old failed" });
      assert.equal(await worker.claimAndProcess(failForGood), true);
      const oldCancelled = await queue.enqueue("a", { name: "old cancelled" });
      await queue.cancel(oldCancelled.id);
      clock.advance(10_000);
      const newDone = await queue.enqueue("a", { name: "new done" });
      assert.equal(await worker.claimAndProcess(logAndComplete), true);
      const stillQueued = await queue.enqueue("a", { name: "queued" });
      assert.equal((await queue.logs(oldDone.id)).length, 1);
      assert.equal(await countRows(db, "task_logs"), 2);

      assert.equal(await queue.purge({ statuses: ["completed", "failed"], olderThanMs: 5000 }), 2);
      assert.equal(await queue.get(oldDone.id), undefined);
      assert.equal(await queue.get(oldFailed.id), undefined);
      assert.equal((await queue.get(oldCancelled.id))?.status, "cancelled");
      assert.equal((await queue.get(newDone.id))?.status, "completed");
      assert.equal((await queue.get(stillQueued.id))?.status, "queued");
      // The purged task's log went with it; the kept task's log stayed.
      assert.deepEqual(await queue.logs(oldDone.id), []);
      assert.equal(await countRows(db, "task_logs"), 1);
      assert.equal((await queue.logs(newDone.id))[0].message, "ran new done");

      assert.equal(await queue.purge({ statuses: ["cancelled"], olderThanMs: 20_000 }), 0);
      assert.equal(await queue.purge({ statuses: ["cancelled"], olderThanMs: 5000 }), 1);
      assert.equal(await queue.purge({ statuses: ["completed"], olderThanMs: 0 }), 0);
      clock.advance(1);
      assert.equal(await queue.purge({ statuses: ["completed"], olderThanMs: 0 }), 1);
      assert.equal(await countRows(db, "task_logs"), 0);
      assert.deepEqual((await queue.list()).map((t) => t.id), [stillQueued.id]);
    });
  });

  test("refuses to purge queued or running tasks, deleting nothing", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      await queue.enqueue("a");
      clock.advance(60_000);
      await rejectsWith(
        () => queue.purge({ statuses: ["queued"], olderThanMs: 0 }),
        TypeError,
        /Cannot purge 'queued' tasks/,
      );
      await rejectsWith(
        () => queue.purge({ statuses: ["completed", "running"], olderThanMs: 0 }),
        TypeError,
        /Cannot purge 'running' tasks/,
      );
      await rejectsWith(() => queue.purge({ statuses: ["completed"], olderThanMs: -1 }), RangeError);
      assert.equal(await countRows(db, "task_queue"), 1);
    });
  });
});

describe("Queue.stats", () => {
  test("always reports all six counts, also on an empty queue", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      assert.deepEqual(await queue.stats(), {
        counts: { waiting: 0, queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0 },
        byType: {},
        oldestQueuedAgeMs: null,
        lastMinute: { completed: 0, failed: 0 },
      });
    });
  });

  test("counts by status and by type", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const tasks = await queue.enqueueMany([
        { type: "a" },
        { type: "a" },
        { type: "b" },
        { type: "b" },
        { type: "b" },
      ]);
      assert.equal(await runOne(db, complete), true); // tasks[0]
      assert.equal(await runOne(db, failForGood), true); // tasks[1]
      await queue.cancel(tasks[2].id);
      const stats = await queue.stats();
      assert.deepEqual(stats.counts, {
        waiting: 0,
        queued: 2,
        running: 0,
        completed: 1,
        failed: 1,
        cancelled: 1,
      });
      assert.deepEqual(stats.byType, {
        a: { waiting: 0, queued: 0, running: 0, completed: 1, failed: 1, cancelled: 0 },
        b: { waiting: 0, queued: 2, running: 0, completed: 0, failed: 0, cancelled: 1 },
      });
      await storeOf(db).taskClaim({
        workerId: "w",
        limit: 1,
        leaseMs: 60_000,
        now: Date.now(),
        strategy: "fifo",
      });
      const later = await queue.stats();
      assert.equal(later.counts.running, 1);
      assert.equal(later.byType.b.running, 1);
      assert.equal(later.byType.b.queued, 1);
    });
  });

  test("oldestQueuedAgeMs counts only runnable queued tasks, from when they became runnable", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const now = await queue.enqueue("a");
      await queue.enqueue("a", {}, { delayMs: 10_000 });
      clock.advance(4000);
      assert.equal((await queue.stats()).oldestQueuedAgeMs, 4000);
      // With the runnable task gone, the scheduled one does not count until its time comes.
      await queue.cancel(now.id);
      assert.equal((await queue.stats()).oldestQueuedAgeMs, null);
      clock.advance(7000);
      assert.equal((await queue.stats()).oldestQueuedAgeMs, 1000);
      // A running task is not waiting.
      await storeOf(db).taskClaim({
        workerId: "w",
        limit: 1,
        leaseMs: 60_000,
        now: clock.now(),
        strategy: "fifo",
      });
      assert.equal((await queue.stats()).oldestQueuedAgeMs, null);
    });
  });

  test("lastMinute counts the tasks that completed or failed in the last 60 seconds", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      await queue.enqueueMany([{ type: "a" }, { type: "a" }, { type: "a" }, { type: "a" }]);
      assert.equal(await runOne(db, complete, clock), true);
      assert.equal(await runOne(db, complete, clock), true);
      assert.equal(await runOne(db, failForGood, clock), true);
      clock.advance(30_000);
      assert.equal(await runOne(db, complete, clock), true);
      assert.deepEqual((await queue.stats()).lastMinute, { completed: 3, failed: 1 });
      clock.advance(30_001);
      assert.deepEqual((await queue.stats()).lastMinute, { completed: 1, failed: 0 });
      clock.advance(30_000);
      assert.deepEqual((await queue.stats()).lastMinute, { completed: 0, failed: 0 });
      assert.equal((await queue.stats()).counts.completed, 3);
    });
  });
});

describe("QueueDatabase", () => {
  test("a task inserted with raw SQL in db.transaction gets default times and runs like any other", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const before = Date.now();
      const id = await db.transaction(async (tx) => {
        const result = await tx.execute("INSERT INTO task_queue (type, payload) VALUES (?, ?) RETURNING id", [
          "test_task",
          '{"n": 1}',
        ]);
        assert.equal(result.rowsAffected, 1);
        return Number(result.rows[0]?.id);
      });
      const after = Date.now();
      assert.ok(Number.isSafeInteger(id), `an id: ${id}`);
      const task = await queue.get(id);
      assert.ok(task);
      assert.equal(task.status, "queued");
      assert.equal(task.priority, 100);
      assert.equal(task.maxAttempts, 5);
      assert.equal(task.attempts, 0);
      assert.deepEqual(task.payload, { n: 1 });
      for (const time of [task.createdAt, task.updatedAt, task.runAfter]) {
        assert.ok(Number.isInteger(time), `${time} is an integer`);
        assert.ok(time >= before - 1 && time <= after + 1, `${time} lies in [${before}, ${after}]`);
      }
      const seen: unknown[] = [];
      assert.equal(await runOne(db, (t) => void seen.push(t.payload)), true);
      assert.deepEqual(seen, [{ n: 1 }]);
      assert.equal((await queue.get(id))?.status, "completed");
    });
  });

  test("db.transaction returns what fn returns, and rolls back everything when fn throws", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const boom = new Error("boom");
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.execute("INSERT INTO task_queue (type) VALUES ('a')");
          await tx.execute("INSERT INTO task_queue (type) VALUES ('b')");
          throw boom;
        }),
        (error) => error === boom,
      );
      assert.deepEqual(await queue.list(), []);
      const n = await db.transaction(async (tx) => {
        await tx.execute("INSERT INTO task_queue (type) VALUES ('a')");
        return 42;
      });
      assert.equal(n, 42);
      assert.equal((await queue.list()).length, 1);
    });
  });

  test("initializeSchema is idempotent and keeps the data", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const task = await queue.enqueue("a", { keep: true });
      await db.initializeSchema();
      await db.initializeSchema();
      assert.deepEqual(await queue.get(task.id), task);
      const versions = await db.transaction((tx) => tx.execute("SELECT version FROM prismq_migrations"));
      const numbers = versions.rows.map((row) => Number(row.version));
      assert.equal(new Set(numbers).size, numbers.length);
      assert.ok(numbers.includes(1));
    });
  });

  test("two QueueDatabase objects on one file can migrate at the same time, and both can write after", async () => {
    const { dir, remove } = makeTempDir();
    const path = join(dir, "shared.db");
    const dbs = [new QueueDatabase(path), new QueueDatabase(path)];
    try {
      await Promise.all(dbs.map((db) => db.initializeSchema()));
      const versions = await dbs[0].transaction((tx) =>
        tx.execute("SELECT version, count(*) AS n FROM prismq_migrations GROUP BY version")
      );
      assert.ok(versions.rows.length >= 1);
      for (const row of versions.rows) assert.equal(Number(row.n), 1);
      const first = await new Queue(dbs[0]).enqueue("shared", { from: 0 });
      const second = await new Queue(dbs[1]).enqueue("shared", { from: 1 });
      assert.deepEqual(await new Queue(dbs[1]).get(first.id), first);
      assert.deepEqual(await new Queue(dbs[0]).get(second.id), second);
    } finally {
      for (const db of dbs) await db.close();
      remove();
    }
  });

  test("the database itself rejects rows that break its rules, written with raw SQL", async () => {
    await withDb(async (db) => {
      const insert = (sql: string) => db.transaction((tx) => tx.execute(sql));
      const bad: [string, RegExp][] = [
        [
          "INSERT INTO task_queue (type, status) VALUES ('a', 'processing')",
          /CHECK constraint failed: status/,
        ],
        [
          "INSERT INTO task_queue (type, status) VALUES ('a', 'dead_letter')",
          /CHECK constraint failed: status/,
        ],
        [
          "INSERT INTO task_queue (type, payload) VALUES ('a', 'not json')",
          /CHECK constraint failed: json_valid/,
        ],
        ["INSERT INTO task_queue (type) VALUES ('   ')", /CHECK constraint failed/],
        ["INSERT INTO task_queue (type, max_attempts) VALUES ('a', 0)", /CHECK constraint failed/],
        ["INSERT INTO task_queue (type, attempts) VALUES ('a', -1)", /CHECK constraint failed/],
        ["INSERT INTO task_queue (type, timeout_ms) VALUES ('a', 0)", /CHECK constraint failed/],
        // A running task must hold a lease.
        ["INSERT INTO task_queue (type, status) VALUES ('a', 'running')", /CHECK constraint failed/],
        [
          "INSERT INTO task_logs (task_id, at, level, message) VALUES (99999, 0, 'info', 'orphan')",
          /FOREIGN KEY/,
        ],
      ];
      for (const [sql, pattern] of bad) {
        await assert.rejects(insert(sql), (error: Error) => {
          assert.match(error.message, pattern, sql);
          return true;
        }, sql);
      }
      assert.equal(await countRows(db, "task_queue"), 0);
      assert.equal(await countRows(db, "task_logs"), 0);
      const task = await new Queue(db).enqueue("a");
      await assert.rejects(
        insert(`UPDATE task_queue SET status = 'finished' WHERE id = ${task.id}`),
        /CHECK constraint failed/,
      );
      assert.equal((await new Queue(db).get(task.id))?.status, "queued");
    });
  });
});
