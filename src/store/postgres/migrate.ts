/**
 * Brings a database to the newest schema: applies the migrations in `migrations.ts` it has not had yet, in
 * one transaction that first takes a transaction-level advisory lock, so that processes starting together
 * wait for each other and apply each migration once. Refuses a database a newer PrismQ migrated, and one
 * whose tables by PrismQ's names PrismQ did not create.
 *
 * A migration may rightly take longer than one call may (`requestTimeoutMs`, or a `statement_timeout` the
 * URL sets): rewriting a large table, or waiting for another process's migration. So it runs on a
 * connection of its own without the driver's deadline, with `statement_timeout` 0; the wait for the
 * advisory lock is unbounded too (its holder is another migration, which ends, fails or dies, and the lock
 * goes with it); only waits for the locks of tables, which an application's long transaction may hold, keep
 * `lock_timeout` at `requestTimeoutMs`, so that a start blocked so fails saying why rather than hanging.
 *
 * @module
 */
import { DatabaseError } from "../../errors.ts";
import type { PgConnection } from "./connection.ts";
import { MIGRATIONS } from "./migrations.ts";

/** The advisory lock migrations take: a fixed number, PrismQ's own ("PrismQ" in ASCII, then 1). */
export const MIGRATION_LOCK = 0x507269736d5101n;

/** Applies the migrations `conn`'s database has not had yet; returns their versions. */
export async function migrate(conn: PgConnection, now: number): Promise<number[]> {
  try {
    return await migrateWithin(conn, now);
  } catch (error) {
    // begin() passes what its callback throws as it is: the driver's failures, too, become DatabaseErrors.
    throw conn.error(error);
  }
}

function migrateWithin(conn: PgConnection, now: number): Promise<number[]> {
  return conn.unbounded(async (tx) => {
    await tx.unsafe("SET LOCAL statement_timeout = 0");
    await tx.unsafe("SET LOCAL lock_timeout = 0");
    await tx.unsafe(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
    await tx.unsafe(`SET LOCAL lock_timeout = ${conn.requestTimeoutMs}`);
    await tx.unsafe(
      "CREATE TABLE IF NOT EXISTS prismq_migrations " +
        "(version bigint PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)",
    );
    const rows = await tx.unsafe("SELECT version FROM prismq_migrations");
    const applied = new Set(rows.map((row) => Number(row.version)));
    const newest = Math.max(0, ...applied);
    const known = MIGRATIONS[MIGRATIONS.length - 1]!.version;
    if (newest > known) {
      throw new DatabaseError(
        `This database was migrated by a newer PrismQ (schema version ${newest}; this one knows up to ` +
          `${known}). Upgrade PrismQ to use it.`,
      );
    }
    if (applied.size === 0) {
      // A database PrismQ never migrated that has tables by PrismQ's names belongs to something else.
      const taken = await tx.unsafe(
        "SELECT c.relname AS name FROM pg_class c WHERE c.relname IN ('task_queue', 'workers', 'task_logs') " +
          "AND c.relnamespace = current_schema()::regnamespace ORDER BY 1",
      );
      if (taken.length > 0) {
        throw new DatabaseError(
          `This database already has ${taken.map((row) => `a table '${row.name}'`).join(" and ")} that ` +
            `PrismQ did not create (there is no record of PrismQ's migrations in it). Give PrismQ a ` +
            `database of its own.`,
        );
      }
    }
    const done: number[] = [];
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      await tx.unsafe(migration.sql);
      await tx.unsafe("INSERT INTO prismq_migrations (version, name, applied_at) VALUES ($1, $2, $3)", [
        migration.version,
        migration.name,
        now,
      ]);
      done.push(migration.version);
    }
    return done;
  });
}
