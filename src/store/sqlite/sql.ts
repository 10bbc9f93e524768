/**
 * The few tools every query file of the SQLite store uses: Drizzle SQL compiled to the driver's statements
 * (once, for the hot path), bound LIMITs the planner leaves alone, statuses as literals, and running a query
 * or a batch of them on the connection.
 *
 * Queries on the hot path are written with Drizzle's `sql` tag rather than its builder, for two measured
 * reasons: statuses must be literals for SQLite to use the partial indexes (a bound parameter hides them),
 * and many-row inserts and updates pass their rows as one JSON parameter read with `json_each`, which costs a
 * fraction of binding every value.
 *
 * @module
 */
import { fillPlaceholders, type Placeholder, type SQL, sql } from "drizzle-orm";
import { SQLiteSyncDialect } from "drizzle-orm/sqlite-core";
import { TASK_STATUSES, type TaskEvent, type TaskStatus, TRANSITIONS } from "../../task.ts";
import type { Fence } from "../store.ts";
import type { Connection } from "./connection.ts";
import type { SqlRow, SqlStatement, SqlValue } from "./driver.ts";

const dialect = new SQLiteSyncDialect();

/** A named parameter of a {@link PreparedSql}, filled in by {@link PreparedSql.bind}. */
export const p = sql.placeholder;

/** Drizzle SQL as text and positional arguments for the driver. */
export function compile(query: SQL): SqlStatement {
  const { sql: text, params } = dialect.sqlToQuery(query);
  return { sql: text, args: params as SqlValue[] };
}

/**
 * A query compiled once, for the hot path: each use only fills in its placeholders, and the driver reuses
 * its prepared statement, since the text never changes.
 */
export class PreparedSql {
  readonly #text: string;
  readonly #params: unknown[];

  constructor(query: SQL) {
    const { sql: text, params } = dialect.sqlToQuery(query);
    this.#text = text;
    this.#params = params;
  }

  bind(values: Record<string, unknown>): SqlStatement {
    return { sql: this.#text, args: fillPlaceholders(this.#params, values) as SqlValue[] };
  }
}

/** Runs `query` on its own and returns its rows. */
export async function all<T = SqlRow>(conn: Connection, query: SQL): Promise<T[]> {
  return (await conn.execute(compile(query))).rows as T[];
}

/** Runs the queries as one write transaction and returns each one's rows. */
export async function batch(conn: Connection, queries: readonly SQL[]): Promise<SqlRow[][]> {
  return (await conn.batch(queries.map(compile))).map((result) => result.rows);
}

/**
 * A bound LIMIT or OFFSET, written `+?`. SQLite's planner reads a bare `LIMIT ?` when it prepares, so each
 * binding expires the statement and its next run prepares it again: 0.1 ms more per claim, about twice the
 * cost of a claim that finds one task. The unary plus makes it an expression the planner leaves alone.
 */
export function bound(value: Placeholder | number): SQL {
  return sql`+${value}`;
}

/** A status list as SQL literals, so that SQLite can match partial indexes. */
export function literalStatuses(statuses: readonly TaskStatus[]): SQL {
  for (const status of statuses) {
    if (!TASK_STATUSES.includes(status)) throw new TypeError(`bad status ${status}`);
  }
  return sql.raw(`(${statuses.map((status) => `'${status}'`).join(", ")})`);
}

/** The statuses an event may start from: the store's side of `TRANSITIONS`. */
export function statusAllows(event: TaskEvent): SQL {
  return sql`status IN ${literalStatuses(TRANSITIONS[event].from)}`;
}

/** Fences as one JSON parameter, `[[id, lease token], …]`, for `json_each`. */
export function fencesJson(fences: readonly Fence[]): string {
  return JSON.stringify(fences.map((fence) => [fence.id, fence.leaseToken]));
}
