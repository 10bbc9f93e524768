/**
 * Migrations on PostgreSQL run to the end whatever bounds the calls of the store: a `statement_timeout`
 * the URL sets, a small `requestTimeoutMs`, or defaults a role or database has; and a process that starts
 * while another migrates waits for it, however long it takes. Only a wait for a table's lock, which an
 * application's long transaction may hold, stays bounded by `requestTimeoutMs`, and fails saying so. Each
 * test holds the migrations' advisory lock (or a table's lock) from a session of its own, as another
 * process migrating would, for longer than the store's calls may take.
 */
// Not rerun on libsql: PostgreSQL only, no SQLite engine is involved.
import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import postgres from "postgres";
import { DatabaseError } from "../src/errors.ts";
import { openPostgresStore, type PostgresStoreOptions } from "../src/store/postgres/mod.ts";
import { MIGRATION_LOCK } from "../src/store/postgres/migrate.ts";
import { MIGRATIONS } from "../src/store/postgres/migrations.ts";
import { delay, waitFor, within } from "./_helpers.ts";
import { freshDatabase, postgresUnavailable } from "./_postgres.ts";
import { newTask } from "./conformance/_fixtures.ts";

const skip = postgresUnavailable();

/** How long a test waits for anything: a guard against hanging, never a measure. */
const GUARD_MS = 30_000;

/** The test's own sessions are bound by nothing a role or database sets (as strings: the driver leaves out a 0). */
const UNBOUNDED = { statement_timeout: "0", lock_timeout: "0" } as unknown as { statement_timeout: number };

/** Whether a session of `app`'s database waits for an advisory or a table lock. */
async function someoneWaits(app: postgres.Sql, locktype: "advisory" | "relation"): Promise<boolean> {
  const [row] = await app`
    SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND locktype = ${locktype}`;
  return row!.n > 0;
}

/**
 * Migrates a store on `url` while another session holds the migrations' lock, released only `holdMs`
 * after the store began waiting for it: the store must wait it out, then migrate.
 */
async function migrateBehindAnother(
  url: string,
  options: PostgresStoreOptions,
  holdMs: number,
  appUrl = url,
) {
  const app = postgres(appUrl, { max: 1, onnotice: false, connection: UNBOUNDED });
  const store = openPostgresStore(url, { reconnectTimeoutMs: 0, ...options });
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  try {
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holding = app.begin(async (tx) => {
      await tx.unsafe(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
      locked();
      await released;
    });
    await within(GUARD_MS, "the lock", isLocked);
    const migrating = store.migrate(Date.now());
    const outcome = migrating.then(() => "migrated", (error) => error);
    let settled = false;
    outcome.finally(() => (settled = true));
    const other = postgres(appUrl, { max: 1, onnotice: false, connection: UNBOUNDED });
    try {
      await waitFor(
        async () => settled || await someoneWaits(other, "advisory"),
        GUARD_MS,
        "the store to wait for the lock",
      );
      if (settled) assert.fail(`the migration ended before the lock was released: ${await outcome}`);
    } finally {
      await other.end();
    }
    // Longer than the store's calls may take: a wait that the call's bounds applied to would end in it.
    await delay(holdMs);
    release();
    await holding;
    assert.equal(await within(GUARD_MS, "the migration", outcome), "migrated");
    const versions = (await app`SELECT version FROM prismq_migrations ORDER BY 1`).map((r) =>
      Number(r.version)
    );
    assert.deepEqual(versions, MIGRATIONS.map((m) => m.version));
  } finally {
    release();
    await store.close();
    await app.end();
  }
}

test("a migration waits for another's, past a statement_timeout that the URL sets", { skip }, async () => {
  const database = await freshDatabase();
  try {
    const url = new URL(database.url);
    url.searchParams.set("statement_timeout", "100");
    await migrateBehindAnother(url.toString(), {}, 600, database.url);
  } finally {
    await database.drop();
  }
});

test("a migration waits for another's, past the store's requestTimeoutMs", { skip }, async () => {
  const database = await freshDatabase();
  try {
    await migrateBehindAnother(database.url, { requestTimeoutMs: 150 }, 600);
  } finally {
    await database.drop();
  }
});

test(
  "a role's and a database's own small statement_timeout and lock_timeout neither stop a migration nor the calls after it",
  {
    skip,
  },
  async () => {
    const database = await freshDatabase();
    const role = `prismq_short_${process.pid}`;
    const admin = postgres(database.url, { max: 1, onnotice: false });
    try {
      await admin.unsafe(`CREATE ROLE ${role} LOGIN SUPERUSER`);
      await admin.unsafe(`ALTER ROLE ${role} SET statement_timeout = 1`);
      await admin.unsafe(`ALTER ROLE ${role} SET lock_timeout = 1`);
      const name = new URL(database.url).pathname.slice(1);
      await admin.unsafe(`ALTER DATABASE ${name} SET statement_timeout = 1`);
      const url = new URL(database.url);
      url.username = role;
      await migrateBehindAnother(url.toString(), {}, 300);
      const store = openPostgresStore(url.toString());
      try {
        const { id } = await store.taskInsertOne(newTask({ runAfter: 0, maxAttempts: 1 }), 1);
        assert.equal((await store.taskGet(id))?.status, "queued");
      } finally {
        await store.close();
      }
    } finally {
      await admin.end();
      await database.drop();
      const server = postgres(database.url.replace(/\/[^/?]*(\?|$)/, "/postgres$1"), { max: 1 });
      await server.unsafe(`DROP ROLE IF EXISTS ${role}`).finally(() => server.end());
    }
  },
);

test(
  "a migration that waits for a table an application holds locked fails after requestTimeoutMs, saying so",
  {
    skip,
  },
  async () => {
    const database = await freshDatabase();
    const app = postgres(database.url, { max: 1, onnotice: false });
    const store = openPostgresStore(database.url, { requestTimeoutMs: 200, reconnectTimeoutMs: 0 });
    try {
      await store.migrate(Date.now());
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let locked!: () => void;
      const isLocked = new Promise<void>((resolve) => (locked = resolve));
      const holding = app.begin(async (tx) => {
        await tx.unsafe("LOCK TABLE prismq_migrations IN ACCESS EXCLUSIVE MODE");
        locked();
        await released;
      });
      await within(GUARD_MS, "the lock", isLocked);
      const error = await within(GUARD_MS, "the migration", store.migrate(Date.now()).catch((e) => e));
      release();
      await holding;
      assert.ok(error instanceof DatabaseError, String(error));
      assert.match(error.message, /A lock on the PostgreSQL server at .* stayed held by another session/);
    } finally {
      await store.close();
      await app.end();
      await database.drop();
    }
  },
);
