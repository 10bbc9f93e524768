/**
 * The few tools every query file of the PostgreSQL store uses: Drizzle SQL compiled to text with `$n`
 * parameters (once, for the hot path), statuses as literals, and arrays passed as one parameter each.
 *
 * Queries are written with Drizzle's `sql` tag rather than its builder, as in the SQLite store: statuses
 * must be literals for PostgreSQL to use the partial indexes (a bound parameter hides them from the
 * planner of a generic plan), and many-row writes pass each column as one array read with `unnest`, one
 * statement for any number of tasks.
 *
 * @module
 */
import { fillPlaceholders, Param, type SQL, sql } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import { TASK_STATUSES, type TaskEvent, type TaskStatus, TRANSITIONS } from "../../task.ts";

const dialect = new PgDialect();

/** SQL text and its parameters, as the driver takes them. */
export interface Statement {
  text: string;
  params: unknown[];
}

/** A named parameter of a {@link PreparedSql}, filled in by {@link PreparedSql.bind}. */
export const p = sql.placeholder;

/** Drizzle SQL as text and positional parameters. */
export function compile(query: SQL): Statement {
  const { sql: text, params } = dialect.sqlToQuery(query);
  return { text, params };
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

  /**
   * The statement with `values` in its placeholders. Arrays go as {@link arrayText}: every placeholder given
   * an array must be cast to `bigint[]` or `text[]` (JSON goes as its text, never as an array).
   */
  bind(values: Record<string, unknown>): Statement {
    const params = fillPlaceholders(this.#params, values);
    for (let i = 0; i < params.length; i++) {
      const param = params[i];
      if (Array.isArray(param)) params[i] = arrayText(param);
    }
    return { text: this.#text, params };
  }
}

/**
 * A compiled statement as Drizzle SQL again, for a runner that takes nothing else (an application's Drizzle
 * database): the text between parameters verbatim, each `$n` bound to its value. Only for statements this
 * store compiled, whose text holds no `$` but its parameters'.
 */
export function drizzleSql({ text, params }: Statement): SQL {
  const parts = text.split(/\$(\d+)/);
  return sql.join(
    parts.map((part, i) => (i % 2 === 0 ? sql.raw(part) : sql`${new Param(params[Number(part) - 1])}`)),
  );
}

/**
 * An array as one parameter (Drizzle's `sql` tag would spread it into a list), for `unnest` or `= ANY`.
 * Its type is the cast written after it, such as `${array(ids)}::bigint[]`.
 */
export function array(values: readonly unknown[]): SQL {
  return sql`${new Param(arrayText(values))}`;
}

/** Characters a quoted element of an array's text must escape. */
const ESCAPED = /[\\"]/g;
const NEEDS_ESCAPE = /[\\"]/;

/**
 * Numbers, strings, booleans and nulls as PostgreSQL's text form of an array (`{1,2}`, `{"a","b\"c"}`),
 * for a parameter cast to `bigint[]` or `text[]`: the driver's own encoding runs two regular expressions
 * over every element, a twentieth of a worker's time in a drain, and more in a bulk enqueue of large
 * payloads. Anything else is left to the driver.
 */
export function arrayText(values: readonly unknown[]): string | readonly unknown[] {
  let text = "{";
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i > 0) text += ",";
    if (value === null) text += "NULL";
    else if (typeof value === "number" || typeof value === "boolean") text += String(value);
    else if (typeof value !== "string") return values;
    else if (NEEDS_ESCAPE.test(value)) text += `"${value.replace(ESCAPED, "\\$&")}"`;
    else text += `"${value}"`;
  }
  return `${text}}`;
}

/** A status list as SQL literals, so that PostgreSQL can match partial indexes. */
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

/** Fences as two parallel arrays, ids and lease tokens, for `unnest`. */
export function fenceArrays(fences: readonly { id: number; leaseToken: string }[]): [number[], string[]] {
  return [fences.map((fence) => fence.id), fences.map((fence) => fence.leaseToken)];
}
