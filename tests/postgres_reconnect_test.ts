/**
 * The PostgreSQL store outlives a server it cannot reach for a while, and connections lost under its calls:
 * calls that never reached the server are made again, with backoff, until it is back; calls whose
 * connection was lost under them are made again only where a repeat changes nothing, and the others fail
 * saying they may or may not have been applied; after `reconnectTimeoutMs` a call fails with an error that
 * says so. LISTEN is made again after its connection goes, and wakes its listeners. Each test puts the
 * fault-injecting proxy of tests/fixtures/fault_proxy.ts (on 127.0.0.1) between the store and the server,
 * and checks the database through a connection of its own that no fault touches.
 */
// Not rerun on libsql: PostgreSQL only, no SQLite engine is involved.
import assert from "node:assert/strict";
import { test } from "node:test";
import postgres from "postgres";
import { DatabaseError } from "../src/errors.ts";
import { openPostgresStore, type PostgresStore } from "../src/store/postgres/mod.ts";
import { type FaultProxy, startFaultProxy } from "./fixtures/fault_proxy.ts";
import { deferred, waitFor, within } from "./_helpers.ts";
import { freshDatabase, postgresUnavailable } from "./_postgres.ts";
import { newTask } from "./conformance/_fixtures.ts";

const skip = postgresUnavailable();

const TASK = newTask({ runAfter: 0 });

/** How long a test waits for anything: a guard against hanging, never a measure. */
const GUARD_MS = 30_000;

interface Setup {
  /** A store reaching the server through the proxy, migrated (so it has reached the server once). */
  store: PostgresStore;
  proxy: FaultProxy;
  /** The application's own connection, straight to the server. */
  app: postgres.Sql;
}

/** A fresh database, the proxy in front of it and a store behind the proxy; all closed after. */
async function withProxiedStore(
  fn: (setup: Setup) => Promise<void>,
  options: { reconnectTimeoutMs?: number } = {},
): Promise<void> {
  const database = await freshDatabase();
  const proxy = await startFaultProxy(Number(new URL(database.url).port));
  const store = openPostgresStore(proxy.via(database.url), {
    maxConnections: 2,
    connectTimeoutMs: 1000,
    requestTimeoutMs: 2000,
    reconnectTimeoutMs: options.reconnectTimeoutMs ?? GUARD_MS,
  });
  const app = postgres(database.url, { max: 2, onnotice: false });
  try {
    await store.migrate(Date.now());
    await fn({ store, proxy, app });
  } finally {
    await proxy.close();
    await store.close();
    await app.end();
    await database.drop();
  }
}

/** Resolves once the proxy has turned away `count` more connections than it had: the store tried again. */
function refusedMore(proxy: FaultProxy, count: number): Promise<void> {
  const before = proxy.accepted;
  return waitFor(() => proxy.accepted >= before + count, GUARD_MS, `${count} more connection attempts`);
}

test("a call made while the server cannot be reached is made again until it is back, and succeeds", {
  skip,
}, async () => {
  await withProxiedStore(async ({ store, proxy, app }) => {
    proxy.refuse(true);
    proxy.cut();
    const inserted = store.taskInsertOne({ ...TASK, idempotencyKey: "k" }, 1);
    const read = store.taskList({ limit: 10, offset: 0 });
    await refusedMore(proxy, 3);
    proxy.refuse(false);
    const [task, list] = await within(GUARD_MS, "the calls", Promise.all([inserted, read]));
    assert.equal(task.created, true);
    assert.ok(Array.isArray(list));
    assert.deepEqual((await app`SELECT idempotency_key AS key FROM task_queue`).map((r) => r.key), ["k"]);
  });
});

test("a call that cannot reach the server for reconnectTimeoutMs fails, saying how long it was tried", {
  skip,
}, async () => {
  await withProxiedStore(async ({ store, proxy }) => {
    proxy.refuse(true);
    proxy.cut();
    const error = await within(GUARD_MS, "the call", store.taskGet(1).catch((e) => e));
    assert.ok(error instanceof DatabaseError, String(error));
    assert.match(error.message, /PostgreSQL server at 'postgres:\/\/postgres@127\.0\.0\.1:\d+\/\w+'/);
    assert.match(error.message, / It was tried again for 300 ms \(reconnectTimeoutMs\)\.$/);
  }, { reconnectTimeoutMs: 300 });
});

test("with reconnectTimeoutMs 0, a call that cannot reach the server fails at once", { skip }, async () => {
  await withProxiedStore(async ({ store, proxy }) => {
    proxy.refuse(true);
    proxy.cut();
    const error = await within(GUARD_MS, "the call", store.taskGet(1).catch((e) => e));
    assert.ok(error instanceof DatabaseError, String(error));
    assert.doesNotMatch(error.message, /tried again/);
  }, { reconnectTimeoutMs: 0 });
});

test(
  "an enqueue whose answer is lost with its connection: one with a key is made again and adds one task; one without fails, saying it may have been applied",
  {
    skip,
  },
  async () => {
    await withProxiedStore(async ({ store, proxy, app }) => {
      const count = async () => (await app`SELECT count(*)::int AS n FROM task_queue`)[0]!.n as number;
      // The server applies and commits what it is sent; its answers are held, then the connection is cut.
      proxy.stall("answers");
      const keyed = store.taskInsertOne({ ...TASK, idempotencyKey: "once" }, 1);
      await waitFor(async () => (await count()) === 1, GUARD_MS, "the keyed insert to commit");
      proxy.cut();
      proxy.resume();
      const again = await within(GUARD_MS, "the keyed insert", keyed);
      assert.equal(again.created, false, "made again, it found the task its first try added");
      assert.equal(await count(), 1);

      proxy.stall("answers");
      const plain = store.taskInsertOne(TASK, 2).catch((e) => e);
      await waitFor(async () => (await count()) === 2, GUARD_MS, "the plain insert to commit");
      proxy.cut();
      proxy.resume();
      const error = await within(GUARD_MS, "the plain insert", plain);
      assert.ok(error instanceof DatabaseError, String(error));
      assert.match(error.message, /was lost .*A write under way may or may not have been applied\.$/s);
      assert.equal(await count(), 2, "not made again");
    });
  },
);

for (
  const outcome of [
    { status: "completed" },
    { status: "queued", runAfter: 50_000, errorMessage: "try again" },
    { status: "failed", errorMessage: "no" },
  ] as const
) {
  test(
    `an outcome (${outcome.status}) whose answer is lost is made again, changes nothing more, and is reported recorded`,
    {
      skip,
    },
    async () => {
      await withProxiedStore(async ({ store, proxy, app }) => {
        // One outcome first, as a worker's connection has recorded before: its statements are prepared, so
        // the next write goes in one flight. (A statement the connection has never prepared waits for the
        // server's description of it before it is sent: with the answers held, it would not be applied.)
        const { id: warm } = await store.taskInsertOne(TASK, 1);
        const claim0 = { workerId: "w", limit: 1, leaseMs: 60_000, now: 2, strategy: "fifo" } as const;
        const [w0] = await store.taskClaim(claim0);
        await store.taskRecord({
          starts: [],
          finishes: [{ id: warm, leaseToken: w0!.leaseToken, ...outcome }],
        }, 3);
        const { id } = await store.taskInsertOne(TASK, 1);
        const claim = { workerId: "w", limit: 1, leaseMs: 60_000, now: 2, strategy: "fifo" } as const;
        const [leased] = await store.taskClaim(claim);
        proxy.stall("answers");
        const recorded = store.taskRecord({
          starts: [],
          finishes: [{ id, leaseToken: leased!.leaseToken, ...outcome }],
        }, 3);
        const status = async () => (await app`SELECT status FROM task_queue WHERE id = ${id}`)[0]!.status;
        await waitFor(async () => (await status()) === outcome.status, GUARD_MS, "the outcome to commit");
        const [row] = await app`SELECT * FROM task_queue WHERE id = ${id}`;
        proxy.cut();
        proxy.resume();
        const answer = await within(GUARD_MS, "the outcome", recorded);
        // The repeat found the lease ended, by the first try, whose outcome the row holds: the call's own.
        assert.deepEqual([...answer.finished], [id]);
        assert.deepEqual((await app`SELECT * FROM task_queue WHERE id = ${id}`)[0], row, "changed once");
        assert.equal(Number(row!.attempts), 1);
      });
    },
  );
}

test("an outcome whose answer is lost, made again after another worker recorded its own, is reported lost", {
  skip,
}, async () => {
  await withProxiedStore(async ({ store, proxy, app }) => {
    const { id } = await store.taskInsertOne(TASK, 1);
    const [leased] = await store.taskClaim({
      workerId: "w",
      limit: 1,
      leaseMs: 60_000,
      now: 2,
      strategy: "fifo",
    });
    // The worker's outcome never reaches the server while the task goes to another, which fails it.
    proxy.refuse(true);
    proxy.cut();
    const recorded = store.taskRecord({
      starts: [],
      finishes: [{ id, leaseToken: leased!.leaseToken, status: "completed" }],
    }, 3);
    await refusedMore(proxy, 1);
    await app`UPDATE task_queue SET status = 'failed', error_message = 'other', lease_token = NULL,
      updated_at = 3, finished_at = 3 WHERE id = ${id}`;
    proxy.refuse(false);
    const answer = await within(GUARD_MS, "the outcome", recorded);
    assert.deepEqual([...answer.finished], [], "not the worker's own outcome");
  });
});

test("a heartbeat made again later extends its leases from when it was made again", { skip }, async () => {
  await withProxiedStore(async ({ store, proxy }) => {
    const { id } = await store.taskInsertOne(TASK, 1);
    const [leased] = await store.taskClaim({
      workerId: "w",
      limit: 1,
      leaseMs: 1000,
      now: 1000,
      strategy: "fifo",
    });
    proxy.refuse(true);
    proxy.cut();
    const beat = store.workerHeartbeat(null, [{ id, leaseToken: leased!.leaseToken }], 5000);
    await refusedMore(proxy, 2);
    proxy.refuse(false);
    assert.deepEqual(await within(GUARD_MS, "the heartbeat", beat), []);
    const leaseUntil = (await store.taskGet(id))!.leaseUntil!;
    assert.ok(leaseUntil > 5000, `the lease runs from the heartbeat that held, to ${leaseUntil}`);
  });
});

test("LISTEN is made again after its connection is cut, and wakes its listeners then and after", {
  skip,
}, async () => {
  await withProxiedStore(async ({ store, proxy, app }) => {
    let calls = 0;
    let woken = deferred();
    const unwatch = store.watchCommits("tasks", () => {
      calls++;
      woken.resolve();
    });
    try {
      await within(GUARD_MS, "the first LISTEN", woken.promise);
      const opened = proxy.accepted;
      woken = deferred();
      proxy.cut();
      // Listening again, it wakes its listeners: what committed meanwhile notified no one.
      await within(GUARD_MS, "the LISTEN made again", woken.promise);
      assert.ok(proxy.accepted > opened, "through a new connection");
      woken = deferred();
      await app`INSERT INTO task_queue (type) VALUES ('after')`;
      await within(GUARD_MS, "the notification after", woken.promise);
      assert.ok(calls >= 3);
    } finally {
      unwatch();
    }
  });
});

test("a LISTEN begun while the server cannot be reached takes effect once it is back", { skip }, async () => {
  await withProxiedStore(async ({ store, proxy, app }) => {
    proxy.refuse(true);
    proxy.cut();
    let woken = deferred();
    const unwatch = store.watchCommits("tasks", () => woken.resolve());
    try {
      await refusedMore(proxy, 2);
      proxy.refuse(false);
      await within(GUARD_MS, "the LISTEN", woken.promise);
      woken = deferred();
      await app`INSERT INTO task_queue (type) VALUES ('after')`;
      await within(GUARD_MS, "the notification", woken.promise);
    } finally {
      unwatch();
    }
  });
});

test("a store that has never reached its server fails at once, even with a reconnectTimeoutMs", {
  skip,
}, async () => {
  await withProxiedStore(async ({ proxy }) => {
    proxy.refuse(true);
    const fresh = openPostgresStore(proxy.via(`postgres://postgres@127.0.0.1:${proxy.port}/x`), {
      connectTimeoutMs: 1000,
      reconnectTimeoutMs: 3_600_000,
    });
    try {
      const error = await within(GUARD_MS, "the first call", fresh.migrate(1).catch((e) => e));
      assert.ok(error instanceof DatabaseError, String(error));
      assert.doesNotMatch(error.message, /tried again/);
    } finally {
      await fresh.close();
    }
  });
});
