/**
 * Brings a database to the newest schema: applies the migrations in `migrations.ts` it has not had yet, in
 * one `BEGIN IMMEDIATE` transaction, so that processes starting together apply each one once. Refuses a
 * database a newer PrismQ migrated, and one whose tables by PrismQ's names PrismQ did not create.
 *
 * @module
 */
import { DatabaseError } from "../../errors.ts";
import type { Connection } from "./connection.ts";
import { MIGRATIONS } from "./migrations.ts";

/** Applies the migrations `conn`'s database has not had yet; returns their versions. */
export function migrate(conn: Connection, now: number): Promise<number[]> {
  return conn.transaction(async (tx) => {
    await tx.execute({
      sql: "CREATE TABLE IF NOT EXISTS prismq_migrations " +
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
      args: [],
    });
    const rows = (await tx.execute({ sql: "SELECT version FROM prismq_migrations", args: [] })).rows;
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
      const { rows: taken } = await tx.execute({
        sql:
          "SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN ('task_queue', 'workers', 'task_logs')",
        args: [],
      });
      if (taken.length > 0) {
        throw new DatabaseError(
          `This database already has ${
            taken.map((row) => `a table '${row.name}'`).join(" and ")
          } that PrismQ ` +
            `did not create (there is no record of PrismQ's migrations in it). Give PrismQ a database of its own.`,
        );
      }
    }
    const done: number[] = [];
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      if (migration.precondition) {
        const { rows: [row] } = await tx.execute({ sql: migration.precondition.sql, args: [] });
        if (Number(Object.values(row ?? {})[0] ?? 0) !== 0) {
          throw new DatabaseError(
            `Cannot upgrade this database to schema version ${migration.version}: ${migration.precondition.message}`,
          );
        }
      }
      await tx.executeMultiple(migration.sql);
      await tx.execute({
        sql: "INSERT INTO prismq_migrations (version, name, applied_at) VALUES (?, ?, ?)",
        args: [migration.version, migration.name, now],
      });
      done.push(migration.version);
    }
    return done;
  });
}
