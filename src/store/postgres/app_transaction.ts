/**
 * Writing tasks through a transaction the application holds, so that they commit or roll back with the
 * application's own writes: PrismQ's own `db.transaction()` handle, a transaction of the `postgres` driver
 * (the `sql` that `sql.begin(fn)` gives `fn`), or a Drizzle PostgreSQL database or transaction (on the
 * `postgres-js` or `node-postgres` driver). A foreign handle must be connected to the queue's database:
 * the same server, database and schema.
 *
 * @module
 */
import { is, type SQL, sql } from "drizzle-orm";
import { PgDatabase } from "drizzle-orm/pg-core";
import { invalidType } from "../../errors.ts";
import type { SqlTransaction } from "../store.ts";
import type { PgConnection, TransactionSql } from "./connection.ts";
import { compile, drizzleSql, type Statement } from "./sql.ts";

/** Runs one statement (Drizzle SQL, or one compiled already) and gives its rows as objects. */
export type SqlRunner = (query: SQL | Statement) => Promise<Record<string, unknown>[]>;

/** The hidden side of the transactions PrismQ hands out: the store they belong to, and raw access. */
const OWN_TRANSACTION = Symbol("prismq.postgresTransaction");

interface OwnTransaction {
  [OWN_TRANSACTION]: { owner: object; run: SqlRunner };
}

/**
 * Runs `fn` in a transaction on `conn`'s pool, with the handle `db.transaction()` gives: plain SQL in
 * PostgreSQL's dialect (`$1`, `$2` parameters), and the hidden side that lets an enqueue join it.
 */
export function ownTransaction<T>(conn: PgConnection, fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
  return conn.begin((tx) => {
    const handle: SqlTransaction & OwnTransaction = {
      execute: async (text, args = []) => {
        if (typeof text !== "string") throw invalidType("execute() needs SQL text.");
        const result = await tx.unsafe(text, args as never[]);
        return {
          rows: [...result] as Record<string, unknown>[],
          rowsAffected: result.count ?? 0,
        };
      },
      [OWN_TRANSACTION]: { owner: conn, run: (query) => conn.rows(query, tx) },
    };
    return fn(handle);
  });
}

/** Where the queue's database is: the server, database and schema a connection lands in. */
const IDENTITY = sql`
  SELECT current_database() || ' ' || current_schema() || ' ' || pg_postmaster_start_time()::text
    || ' ' || current_setting('port') AS identity`;

/** Whether `value` is a transaction of the `postgres` driver: a tagged-template function with `savepoint`. */
function isPostgresJsTransaction(value: unknown): value is TransactionSql {
  return typeof value === "function" && typeof (value as { unsafe?: unknown }).unsafe === "function" &&
    typeof (value as { savepoint?: unknown }).savepoint === "function";
}

/**
 * A runner for `handle`, checked to write to the queue's database.
 *
 * @param sync an enqueue that cannot wait: PostgreSQL answers only asynchronously, so always refused
 * @throws {TypeError} for anything else, naming what to pass instead
 */
export async function adoptTransaction(
  handle: unknown,
  conn: PgConnection,
  sync: boolean,
): Promise<SqlRunner> {
  if (sync) {
    throw invalidType(
      "enqueueSync needs a synchronous transaction, and PostgreSQL's are all asynchronous: use " +
        "await queue.enqueue(…, { tx }).",
    );
  }
  if (typeof handle === "object" && handle !== null && OWN_TRANSACTION in handle) {
    const own = (handle as OwnTransaction)[OWN_TRANSACTION];
    if (own.owner !== conn) {
      throw invalidType(
        "The tx given belongs to another database's transaction. Pass the handle that this queue's own " +
          "db.transaction() gives.",
      );
    }
    return own.run;
  }
  let run: SqlRunner;
  if (isPostgresJsTransaction(handle)) {
    run = async (query) => {
      const { text, params } = "text" in query ? query : compile(query);
      return [...await handle.unsafe(text, params as never[])] as Record<string, unknown>[];
    };
  } else if (is(handle, PgDatabase)) {
    // deno-lint-ignore no-explicit-any
    const drizzle = handle as PgDatabase<any, any, any>;
    run = async (query) => {
      const result = await drizzle.execute("text" in query ? drizzleSql(query) : query) as unknown;
      // postgres-js gives the rows; node-postgres a result holding them.
      return (Array.isArray(result) ? result : (result as { rows: Record<string, unknown>[] }).rows);
    };
  } else {
    throw invalidType(
      "tx must be the handle PrismQ's db.transaction() gives, a transaction of the postgres driver (the sql " +
        "that sql.begin(fn) gives fn), or a Drizzle PostgreSQL database or transaction on the queue's " +
        `database; got ${describe(handle)}.`,
    );
  }
  await checkSameDatabase(run, conn);
  return run;
}

/** The queue's own identity, per connection pool; read again once when a handle's differs (a restart). */
const identities = new WeakMap<PgConnection, string>();

async function checkSameDatabase(run: SqlRunner, conn: PgConnection): Promise<void> {
  const [theirs] = await run(IDENTITY);
  const ours = async (fresh: boolean) => {
    let identity = fresh ? undefined : identities.get(conn);
    if (identity === undefined) {
      identity = String((await conn.rows(IDENTITY))[0]!.identity);
      identities.set(conn, identity);
    }
    return identity;
  };
  const identity = String(theirs?.identity);
  if (identity === await ours(false) || identity === await ours(true)) return;
  throw invalidType(
    `The tx given is connected to another database (${identity.split(" ").slice(0, 2).join(", schema ")}) ` +
      `than the queue's '${conn.location}'. Open the application's transaction on the queue's database.`,
  );
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object" && typeof value !== "function") return typeof value;
  return value.constructor?.name ? `a ${value.constructor.name}` : "an object";
}
