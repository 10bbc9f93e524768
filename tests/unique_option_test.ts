/**
 * The `unique` option through `Queue`: its checks, the results every enqueue form gives, a handler
 * definition's default key, and `enqueueSync` in an application's synchronous Drizzle transaction. What the
 * stores do with the keys is in tests/conformance/unique_test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import Database from "libsql";
import { BetterSQLiteSession } from "drizzle-orm/better-sqlite3/session";
import { BaseSQLiteDatabase, SQLiteSyncDialect } from "drizzle-orm/sqlite-core";
import * as v from "valibot";
import { defineHandler, defineSchedule, Queue, TaskHandlerRegistry, UniqueKeyHeldError } from "../mod.ts";
import { withDb } from "./_helpers.ts";

test("a unique option that is not exactly one scope is refused before anything is written, saying what to give", async () => {
  await withDb(async (db) => {
    const queue = new Queue(db);
    const cases: [unknown, RegExp][] = [
      ["sync:42", /unique must be an object\. Give unique as \{ key, while: "active" \} or \{ key, forMs \}/],
      [{ key: "k" }, /unique needs a scope: while: "active" or forMs/],
      [{ key: "k", while: "active", forMs: 10 }, /while: "active" or forMs, not both/],
      [{ key: "k", while: "done" }, /unique\.while must be "active", got "done"/],
      [{ key: "", while: "active" }, /unique\.key must be a string of 1 to 1024 characters/],
      [{ key: 42, while: "active" }, /unique\.key must be a string/],
      [{ key: "k", forMs: 0 }, /unique\.forMs \(milliseconds\)/],
      [{ key: "k", forMs: 1.5 }, /unique\.forMs/],
      [{ key: "k", forMs: Infinity }, /unique\.forMs/],
      [{ key: "k", while: "active", ttl: 5 }, /unique has no option "ttl"/],
      [{ key: "\ud800", while: "active" }, /unique\.key/],
    ];
    for (const [unique, message] of cases) {
      const error = await queue.enqueue("t", {}, { unique: unique as never }).then(() => null, (e) => e);
      assert.ok(
        error instanceof TypeError || error instanceof RangeError,
        `${JSON.stringify(unique)}: ${error}`,
      );
      assert.match(error.message, message);
      assert.equal((error as { code?: string }).code, "INVALID_ARGUMENT");
    }
    const many = await queue.enqueueMany([{ type: "t" }, { type: "t", unique: { key: "k" } as never }])
      .then(() => null, (e) => e);
    assert.match(many.message, /^Task 2: unique needs a scope/);
    assert.deepEqual(await queue.list(), []);
  });
});

test("every enqueue form says whether it created the task, and which key matched when not", async () => {
  await withDb(async (db) => {
    const queue = new Queue(db);
    const unique = { key: "sync:42", while: "active" } as const;
    const first = await queue.enqueue("sync", { n: 1 }, { unique });
    assert.deepEqual([first.created, first.matchedKey, first.uniqueKey, first.uniqueForMs], [
      true,
      undefined,
      "sync:42",
      null,
    ]);
    assert.equal("matchedKey" in first, false);
    const tasks = await queue.enqueueMany([{ type: "sync", unique }, { type: "other" }]);
    assert.deepEqual(tasks.map((task) => [task.created, task.matchedKey]), [[false, "unique"], [
      true,
      undefined,
    ]]);
    assert.equal(tasks[0]!.id, first.id);
    const ids = await queue.enqueueManyIds([{ type: "sync", unique }]);
    assert.deepEqual(ids, [{ id: first.id, created: false, matchedKey: "unique" }]);
    const keyed = await queue.enqueue("sync", {}, { idempotencyKey: "once" });
    const detailed = await queue.enqueueManyDetailed([{ type: "sync", idempotencyKey: "once", unique }]);
    assert.deepEqual([detailed[0]!.task.id, detailed[0]!.created, detailed[0]!.matchedKey], [
      keyed.id,
      false,
      "idempotencyKey",
    ]);
    // Retried while another holds the key: refused, naming the holder.
    await queue.cancel(first.id);
    const second = await queue.enqueue("sync", {}, { unique });
    const error = await queue.retry(first.id).then(() => null, (e) => e);
    assert.ok(error instanceof UniqueKeyHeldError);
    assert.equal(error.holderId, second.id);
  });
});

test("a handler's unique gives its tasks a key from their validated payload; an enqueue's own wins, null opts out", async () => {
  await withDb(async (db) => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler(defineHandler({
      type: "sync_account",
      schema: v.object({ account: v.pipe(v.string(), v.trim()) }),
      unique: (payload) => ({ key: `sync:${payload.account}`, while: "active" }),
      handle() {},
    }));
    registry.registerHandler(defineHandler({
      type: "slow_schema",
      schema: v.objectAsync({ n: v.number() }),
      unique: (payload) => payload.n > 0 ? { key: `slow:${payload.n}`, forMs: 60_000 } : undefined,
      handle() {},
    }));
    registry.registerHandler(defineHandler({
      type: "broken",
      schema: v.object({}),
      unique: () => ({ key: "b" }) as never,
      handle() {},
    }));
    const queue = new Queue(db, { registry });
    const first = await queue.enqueue("sync_account", { account: " 42 " });
    assert.deepEqual(
      [first.uniqueKey, first.uniqueForMs],
      ["sync:42", null],
      "from the validated (trimmed) payload",
    );
    const again = await queue.enqueue("sync_account", { account: "42" });
    assert.deepEqual([again.id, again.created, again.matchedKey], [first.id, false, "unique"]);
    const own = await queue.enqueue("sync_account", { account: "42" }, {
      unique: { key: "mine", forMs: 5000 },
    });
    assert.deepEqual([own.created, own.uniqueKey, own.uniqueForMs], [true, "mine", 5000]);
    const none = await queue.enqueue("sync_account", { account: "42" }, { unique: null });
    assert.deepEqual([none.created, none.uniqueKey], [true, null]);

    const slow = await queue.enqueueMany([
      { type: "slow_schema", payload: { n: 1 } },
      { type: "slow_schema", payload: { n: 1 } },
      { type: "slow_schema", payload: { n: 0 } },
    ]);
    assert.deepEqual(slow.map((task) => [task.created, task.uniqueKey]), [
      [true, "slow:1"],
      [false, "slow:1"],
      [true, null],
    ]);
    const broken = await queue.enqueue("broken", {}).then(() => null, (e) => e);
    assert.match(broken.message, /^The unique of handler 'broken' gave a wrong value: unique needs a scope/);
    assert.throws(
      () => defineHandler({ type: "x", schema: v.object({}), unique: "k" as never, handle() {} }),
      /The unique of handler 'x' must be a function of the payload/,
    );
  });
});

test("enqueueSync in an application's synchronous Drizzle transaction takes a key, or gives its holder", async () => {
  await withDb(async (db, path) => {
    const queue = new Queue(db);
    const connection = new Database(path);
    try {
      const dialect = new SQLiteSyncDialect();
      const app = new BaseSQLiteDatabase(
        "sync",
        dialect,
        new BetterSQLiteSession(connection as never, dialect, undefined),
        undefined,
      );
      const unique = { key: "digest:7", forMs: 600_000 } as const;
      const [first, second] = app.transaction((tx) => [
        queue.enqueueSync("digest", { n: 1 }, { tx, unique }),
        queue.enqueueSync("digest", { n: 2 }, { tx, unique }),
      ]);
      assert.deepEqual([first!.created, second!.created, second!.matchedKey, second!.id], [
        true,
        false,
        "unique",
        first!.id,
      ]);
      assert.equal((await queue.list()).length, 1);
    } finally {
      connection.close();
    }
  });
});

test("defineSchedule takes a unique key for its tasks, checked as an enqueue's, a wrong one naming the schedule", () => {
  const schedule = defineSchedule({
    name: "sync_all",
    type: "sync_all",
    cron: "* * * * *",
    unique: { key: "schedule:sync_all", while: "active" },
  });
  assert.deepEqual([schedule.uniqueKey, schedule.uniqueForMs], ["schedule:sync_all", null]);
  const windowed = defineSchedule({
    name: "w",
    type: "t",
    cron: "@hourly",
    unique: { key: "w", forMs: 60_000 },
  });
  assert.deepEqual([windowed.uniqueKey, windowed.uniqueForMs], ["w", 60_000]);
  assert.deepEqual([defineSchedule({ name: "n", type: "t", cron: "@daily" }).uniqueKey], [null]);
  assert.throws(
    () => defineSchedule({ name: "bad", type: "t", cron: "@daily", unique: { key: "k" } as never }),
    /^TypeError: Schedule 'bad': unique needs a scope: while: "active" or forMs/,
  );
});
