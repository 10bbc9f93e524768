/**
 * What the PostgreSQL store promises beyond the conformance suite (which runs the contract on it): its
 * tables are the ones schema.ts describes, migrations refuse a database that is not theirs and apply
 * once however many processes start at once, URLs that do not work fail clearly without showing their
 * password, and an enqueue joins the application's own transaction on the `postgres` driver or Drizzle.
 * Every test runs against a real server on 127.0.0.1, a fresh database each.
 */
// Not rerun on libsql: PostgreSQL only, no SQLite engine is involved.
import assert from "node:assert/strict";
import { test } from "node:test";
import { getTableColumns } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import { getTableConfig, type PgTable } from "drizzle-orm/pg-core";
import postgres from "postgres";
import { DatabaseError } from "../src/errors.ts";
import { openPostgresStore, type PostgresStore } from "../src/store/postgres/mod.ts";
import { MIGRATIONS, NOTIFY_CHANNEL } from "../src/store/postgres/migrations.ts";
import {
  leaders,
  metricCounts,
  metricRollup,
  migrationsTable,
  queues,
  schedules,
  taskDependencies,
  taskLogs,
  taskQueue,
  workers,
} from "../src/store/postgres/schema.ts";
import type { LeasedTask } from "../src/store/store.ts";
import { closedPort } from "./_helpers.ts";
import { freshDatabase, postgresUnavailable } from "./_postgres.ts";
import { newTask } from "./conformance/_fixtures.ts";

const skip = postgresUnavailable();

function fenceOf(leased: LeasedTask) {
  return { id: leased.task.id, leaseToken: leased.leaseToken };
}

const TASK = newTask({ runAfter: 0, payload: '{"b":1,"a":[1.50,2]}' });

/** A fresh database and a migrated store on it, and a client of the application's own; all closed after. */
async function withStore(
  fn: (store: PostgresStore, url: string, app: postgres.Sql) => Promise<void>,
  migrate = true,
): Promise<void> {
  const database = await freshDatabase();
  const store = openPostgresStore(database.url, { maxConnections: 4 });
  const app = postgres(database.url, { max: 2, onnotice: false });
  try {
    if (migrate) await store.migrate(Date.now());
    await fn(store, database.url, app);
  } finally {
    await app.end();
    await store.close();
    await database.drop();
  }
}

test("every table has the columns, keys, checks and indexes of the Drizzle schema", { skip }, async () => {
  await withStore(async (_store, _url, app) => {
    for (
      const table of [
        taskQueue,
        workers,
        taskLogs,
        leaders,
        schedules,
        queues,
        taskDependencies,
        metricCounts,
        metricRollup,
        migrationsTable,
      ] as PgTable[]
    ) {
      const config = getTableConfig(table);
      const columns = await app`
        SELECT column_name AS name, data_type AS type, is_nullable = 'NO' AS "notNull",
          column_default IS NOT NULL OR is_identity = 'YES' AS "hasDefault"
        FROM information_schema.columns WHERE table_name = ${config.name} ORDER BY ordinal_position`;
      assert.deepEqual(
        columns.map((c) =>
          `${c.name} ${c.type}${c.notNull ? " NOT NULL" : ""}${c.hasDefault ? " DEFAULT" : ""}`
        ),
        Object.values(getTableColumns(table)).map((c) =>
          `${c.name} ${c.getSQLType()}${c.notNull ? " NOT NULL" : ""}${
            c.hasDefault || c.primary && c.getSQLType() === "bigint" && config.name !== "prismq_migrations"
              ? " DEFAULT"
              : ""
          }`
        ),
        config.name,
      );
      const constraints = await app`
        SELECT conname AS name, contype AS kind, pg_get_constraintdef(oid) AS definition
        FROM pg_constraint WHERE conrelid = ${config.name}::regclass ORDER BY conname`;
      assert.deepEqual(
        constraints.filter((c) => c.kind === "c").map((c) => c.name).sort(),
        config.checks.map((check) => check.name).sort(),
        `${config.name}: CHECK constraints`,
      );
      assert.deepEqual(
        constraints.filter((c) => c.kind === "f").map((c) => c.definition),
        config.foreignKeys.map((key) => {
          const { columns, foreignTable, foreignColumns } = key.reference();
          return `FOREIGN KEY (${columns.map((c) => c.name)}) REFERENCES ${
            getTableConfig(foreignTable).name
          }(${foreignColumns.map((c) => c.name)}) ON DELETE ${key.onDelete?.toUpperCase()}`;
        }),
        `${config.name}: foreign keys`,
      );
      const indexes = await app`
        SELECT i.relname AS name, x.indisunique AS "unique",
          (SELECT string_agg(a.attname, ', ' ORDER BY k.n) FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)
            JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum) AS columns,
          x.indpred IS NOT NULL AS partial
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = ${config.name}::regclass AND NOT x.indisprimary ORDER BY i.relname`;
      assert.deepEqual(
        indexes.map((i) =>
          `${i.name}${i.unique ? " UNIQUE" : ""} (${i.columns})${i.partial ? " WHERE" : ""}`
        ),
        config.indexes.map((index) =>
          `${index.config.name}${index.config.unique ? " UNIQUE" : ""} (${
            index.config.columns.map((c) => (c as { name: string }).name).join(", ")
          })${index.config.where ? " WHERE" : ""}`
        ).sort(),
        `${config.name}: indexes`,
      );
    }
  });
});

test(
  "a database with a task_queue table PrismQ did not create is refused, and left as it was",
  { skip },
  async () => {
    await withStore(async (store, _url, app) => {
      await app`CREATE TABLE task_queue (id int)`;
      await assert.rejects(store.migrate(Date.now()), (error: Error) =>
        error instanceof DatabaseError &&
        /already has a table 'task_queue' that PrismQ did not create/.test(error.message));
      const [{ n }] =
        await app`SELECT count(*)::int AS n FROM pg_class WHERE relname IN ('workers', 'task_logs')`;
      assert.equal(n, 0);
    }, false);
  },
);

test(
  "eight stores migrating a new database at once apply each version once between them",
  { skip },
  async () => {
    await withStore(async (store, url) => {
      const others = Array.from({ length: 7 }, () => openPostgresStore(url, { maxConnections: 1 }));
      try {
        const applied = await Promise.all([store, ...others].map((s) => s.migrate(Date.now())));
        assert.deepEqual(applied.flat().sort((a, b) => a - b), MIGRATIONS.map((m) => m.version));
      } finally {
        await Promise.all(others.map((other) => other.close()));
      }
    }, false);
  },
);

test("times and counts come back as numbers, and serverTime reads the server's clock", { skip }, async () => {
  await withStore(async (store) => {
    const [{ id }] = await store.taskInsertMany([{ ...TASK, runAfter: 8_640_000_000_000_000 }], 1);
    const task = await store.taskGet(id);
    assert.equal(task?.runAfter, 8_640_000_000_000_000);
    assert.deepEqual(task?.payload, { b: 1, a: [1.5, 2] });
    assert.equal((await store.taskWaiting(2)).count, 1);
    const before = Date.now();
    const now = await store.serverTime();
    assert.ok(Number.isSafeInteger(now) && now >= before - 1 && now <= Date.now() + 1, `${now}`);
  });
});

test("a URL that is not one, or names no host, is refused without its password", { skip }, () => {
  for (
    const url of ["postgres://user:s3cret@/db", "mysql://user:s3cret@host/db", "postgres//user:s3cret@h"]
  ) {
    assert.throws(() => openPostgresStore(url), (error: Error) => {
      assert.ok(error instanceof DatabaseError && error.code === "DATABASE_URL_INVALID", String(error));
      assert.doesNotMatch(error.message, /s3cret/);
      return true;
    });
  }
  assert.throws(() => openPostgresStore("postgres://127.0.0.1/db", { maxConnections: 0 }), RangeError);
  assert.throws(() => openPostgresStore("postgres://127.0.0.1/db", { requestTimeoutMs: -1 }), RangeError);
});

test("a server that cannot be reached fails with a DatabaseError that names it without its password", {
  skip,
}, async () => {
  const port = await closedPort();
  const store = openPostgresStore(`postgres://ada:s3cret@127.0.0.1:${port}/queue?password=s3cret`);
  try {
    const error = await store.migrate(Date.now()).catch((e) => e);
    assert.ok(error instanceof DatabaseError, String(error));
    assert.match(
      error.message,
      new RegExp(`Cannot reach the PostgreSQL server at 'postgres://ada@127.0.0.1:${port}/queue'`),
    );
    assert.doesNotMatch(error.message, /s3cret/);
  } finally {
    await store.close();
  }
});

test("an enqueue joins a transaction of the postgres driver: committed with it, or rolled back with it", {
  skip,
}, async () => {
  await withStore(async (store, _url, app) => {
    const [created] = await app.begin(async (tx) => {
      await tx`CREATE TABLE users (email text)`;
      await tx`INSERT INTO users VALUES ('ada@example.com')`;
      return await store.taskInsertManyWithin(tx, [TASK], 5, false);
    });
    assert.equal(created!.created, true);
    assert.equal((await store.taskGet(created!.id))?.createdAt, 5);
    await assert.rejects(
      app.begin(async (tx) => {
        await tx`INSERT INTO users VALUES ('bob@example.com')`;
        await store.taskInsertManyWithin(tx, [{ ...TASK, type: "rolled_back" }, TASK], 6, false);
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.deepEqual((await store.taskList({ limit: 10, offset: 0 })).map((t) => t.id), [created!.id]);
    assert.deepEqual((await app`SELECT email FROM users`).map((r) => r.email), ["ada@example.com"]);
    // The pool itself is not a transaction: refused, so that tasks are never written outside the app's.
    await assert.rejects(async () => await store.taskInsertManyWithin(app, [TASK], 7, false), TypeError);
  });
});

test("an enqueue joins a Drizzle transaction on postgres-js, keyed tasks included", { skip }, async () => {
  await withStore(async (store, _url, app) => {
    const db = drizzle(app);
    const result = await db.transaction(async (tx) =>
      await store.taskInsertManyWithin(
        tx,
        [{ ...TASK, idempotencyKey: "k" }, { ...TASK, idempotencyKey: "k" }],
        9,
        false,
      )
    );
    assert.deepEqual(result.map((r) => r.created), [true, false]);
    assert.equal(result[1]!.existing?.id, result[0]!.id);
    assert.equal(result[1]!.existing?.createdAt, 9);
    // One task alone goes in by the store's compiled INSERT, given to Drizzle as its SQL again.
    const [alone] = await db.transaction(async (tx) =>
      await store.taskInsertManyWithin(tx, [TASK], 8, false)
    );
    assert.equal(alone!.created, true);
    const stored = await store.taskGet(alone!.id);
    assert.deepEqual([stored?.payload, stored?.createdAt, stored?.status], [
      { b: 1, a: [1.5, 2] },
      8,
      "queued",
    ]);
    await assert.rejects(
      db.transaction(async (tx) => {
        await store.taskInsertManyWithin(tx, [TASK], 10, false);
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.equal((await store.taskList({ limit: 10, offset: 0 })).length, 2);
  });
});

test(
  "a transaction on another database is refused with a TypeError, and nothing is written there",
  { skip },
  async () => {
    await withStore(async (store) => {
      const other = await freshDatabase();
      const client = postgres(other.url, { max: 1, onnotice: false });
      try {
        await client`CREATE TABLE task_queue (id bigint)`;
        const error = await client.begin(async (tx) => await store.taskInsertManyWithin(tx, [TASK], 1, false))
          .catch((e) => e);
        assert.ok(error instanceof TypeError, String(error));
        assert.match(error.message, /connected to another database/);
        assert.deepEqual([...await client`SELECT id FROM task_queue`], []);
      } finally {
        await client.end();
        await other.drop();
      }
    });
  },
);

test(
  "a commit that queues tasks on another connection wakes a watcher once its LISTEN is in force",
  { skip },
  async () => {
    await withStore(async (store, url) => {
      const other = openPostgresStore(url, { maxConnections: 1 });
      let called = () => {};
      const stop = store.watchCommits("tasks", () => called());
      const nextCall = (what: string) =>
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no call within 10 s after ${what}`)), 10_000);
          called = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      try {
        await nextCall("the LISTEN took effect"); // the call that covers commits made before it
        let next = nextCall("an insert");
        const [{ id }] = await other.taskInsertMany([TASK], 1);
        await next;
        next = nextCall("a retry");
        const [leased] = await other.taskClaim({
          workerId: "w",
          limit: 1,
          leaseMs: 1000,
          now: 1,
          strategy: "fifo",
        });
        await other.taskRecord({
          starts: [],
          finishes: [{
            id,
            leaseToken: leased!.leaseToken,
            status: "queued",
            runAfter: 2,
            errorMessage: "e",
          }],
        }, 1);
        await next;
      } finally {
        stop();
        await other.close();
      }
    });
  },
);

test(
  "inserts and requeues notify the channel once per transaction; claims and completions do not",
  { skip },
  async () => {
    await withStore(async (store, _url, app) => {
      const received: string[] = [];
      let marked = () => {};
      const marker = new Promise<void>((resolve) => (marked = resolve));
      const { unlisten } = await app.listen(NOTIFY_CHANNEL, (payload) => {
        received.push(payload);
        if (payload === "marker") marked();
      });
      try {
        const ids = (await store.taskInsertMany([TASK, TASK, TASK], 1)).map((r) => r.id);
        const leased = await store.taskClaim({
          workerId: "w",
          limit: 3,
          leaseMs: 1000,
          now: 1,
          strategy: "fifo",
        });
        await store.taskRecord({
          starts: [],
          finishes: [
            { id: ids[0]!, leaseToken: leased[0]!.leaseToken, status: "completed" },
            { id: ids[1]!, leaseToken: leased[1]!.leaseToken, status: "failed", errorMessage: "e" },
            {
              id: ids[2]!,
              leaseToken: leased[2]!.leaseToken,
              status: "queued",
              runAfter: 5,
              errorMessage: "e",
            },
          ],
        }, 2);
        const [again] = await store.taskClaim({
          workerId: "w",
          limit: 1,
          leaseMs: 1000,
          now: 5,
          strategy: "fifo",
        });
        await store.taskRecord({ starts: [], finishes: [{ ...fenceOf(again!), status: "completed" }] }, 6);
        await store.taskRequeue(ids[1]!, 7);
        // Notifications arrive in commit order, so the marker comes after any the writes above sent.
        await app.notify(NOTIFY_CHANNEL, "marker");
        await marker;
        assert.deepEqual(received, ["", "", "", "marker"], "the insert, the retry, the operator's retry");
      } finally {
        await unlisten();
      }
    });
  },
);

test(
  "batches that lock the same tasks in other orders never fail: a deadlock the server breaks is made again",
  { skip },
  async () => {
    await withStore(async (store, url) => {
      const other = openPostgresStore(url, { maxConnections: 2 });
      try {
        await other.taskPending(0);
        // A heartbeat over a worker's 64 tasks, in claim order, beside outcomes of 4 of them in another order:
        // without retrying, the server aborted one of the two about once in 20 rounds (40P01).
        for (let round = 0; round < 40; round++) {
          await store.taskInsertMany(Array.from({ length: 64 }, () => TASK), 1000);
          const leased = await store.taskClaim({
            workerId: "w",
            limit: 64,
            leaseMs: 60_000,
            now: 1000,
            strategy: "fifo",
          });
          const fences = leased.map(fenceOf);
          const done = [fences[1]!, fences[0]!, fences[3]!, fences[2]!];
          const [beat, recorded] = await Promise.all([
            store.workerHeartbeat(null, fences, 121_000),
            other.taskRecord({
              starts: [],
              finishes: done.map((fence) => ({ ...fence, status: "completed" })),
            }, 1000),
          ]);
          // The only leases a heartbeat may find gone are those of the tasks completed beside it.
          const completed = new Set(done.map((fence) => fence.id));
          assert.ok(beat.every((lost) => completed.has(lost.id)), `round ${round}: ${JSON.stringify(beat)}`);
          assert.equal(recorded.finished.size, 4, `round ${round}`);
          await store.taskReleaseMany(fences, 1000);
        }
        // Two bulk enqueues of the same 50 keys in opposite orders: each key created once, no call failing.
        for (let round = 0; round < 15; round++) {
          const keys = Array.from({ length: 50 }, (_, i) => `r${round}-k${i}`);
          const batch = (order: string[]) => order.map((idempotencyKey) => ({ ...TASK, idempotencyKey }));
          const [a, b] = await Promise.all([
            store.taskInsertMany(batch(keys), 1000),
            other.taskInsertMany(batch([...keys].reverse()), 1000),
          ]);
          assert.equal([...a, ...b].filter((result) => result.created).length, 50, `round ${round}`);
        }
      } finally {
        await other.close();
      }
    });
  },
);

test("db.transaction() runs the application's callback once, whatever it throws", { skip }, async () => {
  await withStore(async (store) => {
    let runs = 0;
    const own = Object.assign(new Error("connect ECONNREFUSED (the application's own API)"), {
      code: "ECONNREFUSED",
    });
    await assert.rejects(
      store.transaction(() => {
        runs++;
        return Promise.reject(own);
      }),
      (error) => error === own,
    );
    assert.equal(runs, 1);
  });
});

/** Resolves once some session of this database waits for a lock (polling, for at most 10 s). */
async function someoneWaits(app: postgres.Sql): Promise<void> {
  for (let tries = 0; tries < 1000; tries++) {
    const [row] = await app.unsafe<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    if (row!.n > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error("no session waited for a lock within 10 s");
}

test("a count again that waits for a claim's lock of its queue counts from what that claim left", {
  skip,
}, async () => {
  await withStore(async (store, _url, app) => {
    const now = 1_700_000_000_500;
    const window = 1_700_000_000_000;
    await store.queueUpdate("mail", { rate: { limit: 7, intervalMs: 1000 } }, now);
    await store.queueUpdate("paused", { rate: { limit: 7, intervalMs: 1000 } }, now);
    const changes: [string, string, { counted: number; startBy: number | null }][] = [
      // A claim that counted 5 in the window, committed while the count waits: room for 2 of 4.
      ["mail", `window_start = ${window}, window_count = 5`, { counted: 2, startBy: window + 1000 }],
      // A pause committed while the count waits: none counted.
      ["paused", "paused = true", { counted: 0, startBy: null }],
    ];
    for (const [queue, change, expected] of changes) {
      let counting: Promise<{ counted: number; startBy: number | null }> | undefined;
      await app.begin(async (tx) => {
        await tx.unsafe("SELECT name FROM queues WHERE name = $1 FOR UPDATE", [queue]);
        await tx.unsafe(`UPDATE queues SET ${change} WHERE name = $1`, [queue]);
        counting = store.queueCountAgain(queue, 4, now);
        await someoneWaits(app);
      });
      assert.deepEqual(await counting, expected, queue);
    }
    const [mail] = await app.unsafe("SELECT window_start, window_count FROM queues WHERE name = 'mail'");
    assert.deepEqual([Number(mail!.window_start), Number(mail!.window_count)], [window, 7]);
  });
});
