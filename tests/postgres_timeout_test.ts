/**
 * A call the PostgreSQL server cancels for its time (`requestTimeoutMs`, the server's `statement_timeout`
 * and `lock_timeout`) fails with an outcome the error states: nothing of it was applied. The driver's own
 * deadline is set past the server's (and past the wait for a free connection), so that it fires only on a
 * server gone silent, the one case whose outcome is unknown (that case is tests/postgres_fault_test.ts's).
 */
// Not rerun on libsql: PostgreSQL only, no SQLite engine is involved.
import assert from "node:assert/strict";
import { test } from "node:test";
import postgres from "postgres";
import { DatabaseError } from "../src/errors.ts";
import { deadlines } from "../src/store/postgres/connection.ts";
import { openPostgresStore, type PostgresStore } from "../src/store/postgres/mod.ts";
import { within } from "./_helpers.ts";
import { freshDatabase, postgresUnavailable } from "./_postgres.ts";
import { newTask } from "./conformance/_fixtures.ts";

const skip = postgresUnavailable();

const TASK = newTask({ runAfter: 0 });

/** How long a test waits for anything: a guard against hanging, never a measure. */
const GUARD_MS = 30_000;

/** A store with a short requestTimeoutMs, and the application's own connection, on a fresh database. */
async function withStore(fn: (store: PostgresStore, app: postgres.Sql) => Promise<void>): Promise<void> {
  const database = await freshDatabase();
  const store = openPostgresStore(database.url, { requestTimeoutMs: 300, reconnectTimeoutMs: 0 });
  const app = postgres(database.url, { max: 2, onnotice: false });
  try {
    await store.migrate(Date.now());
    await fn(store, app);
  } finally {
    await store.close();
    await app.end();
    await database.drop();
  }
}

/** Runs `fn` while `app` holds `lock` (a statement) in a transaction of its own. */
async function whileLocked<T>(app: postgres.Sql, lock: string, fn: () => Promise<T>): Promise<T> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const holding = app.begin(async (tx) => {
    await tx.unsafe(lock);
    locked();
    await released;
  });
  try {
    await within(GUARD_MS, "the lock", isLocked);
    return await within(GUARD_MS, "the call", fn());
  } finally {
    release();
    await holding;
  }
}

function assertNothingApplied(error: unknown): void {
  assert.ok(error instanceof DatabaseError, String(error));
  assert.match(error.message, /nothing of it was applied/i);
  assert.doesNotMatch(error.message, /may or may not/);
}

test("the driver's deadline outlasts the wait for a connection and the server's deadline, with a margin", () => {
  for (const ms of [1, 50, 300, 1000, 30_000, 3_600_000]) {
    const { server, queue, client } = deadlines(ms);
    assert.equal(server, ms);
    assert.equal(queue, ms);
    assert.ok(client >= queue + server + Math.max(1000, ms / 10), `${ms}: ${client}`);
  }
});

test("a call the server cancels at requestTimeoutMs, waiting for a lock, fails saying nothing was applied", {
  skip,
}, async () => {
  await withStore(async (store, app) => {
    const { id } = await store.taskInsertOne(TASK, 1);
    const error = await whileLocked(
      app,
      `SELECT id FROM task_queue WHERE id = ${id} FOR UPDATE`,
      () => store.taskCancel(id, 2).catch((e) => e),
    );
    assertNothingApplied(error);
    assert.equal((await store.taskGet(id))?.status, "queued");
  });
});

test("an enqueue without a key that the server cancels fails saying nothing was applied, and added nothing", {
  skip,
}, async () => {
  await withStore(async (store, app) => {
    const error = await whileLocked(
      app,
      "LOCK TABLE task_queue IN EXCLUSIVE MODE",
      () => store.taskInsertOne(TASK, 1).catch((e) => e),
    );
    assertNothingApplied(error);
    assert.equal((await app`SELECT count(*)::int AS n FROM task_queue`)[0]!.n, 0);
  });
});
