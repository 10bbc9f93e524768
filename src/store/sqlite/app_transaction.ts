/**
 * Writing tasks through a transaction the application holds, so that they commit or roll back with the
 * application's own writes: PrismQ's own `db.transaction()` handle, or the application's Drizzle SQLite
 * database or transaction on the same file (any driver: libSQL client, `libsql`, better-sqlite3, bun:sqlite,
 * or a proxy over `node:sqlite`).
 *
 * A synchronous Drizzle driver runs its transaction in a synchronous callback, so everything here runs
 * synchronously while the handle does: the write happens before the caller's callback returns.
 *
 * @module
 */
import { is, type SQL, sql } from "drizzle-orm";
import { BaseSQLiteDatabase, SQLiteTransaction } from "drizzle-orm/sqlite-core";
import { realpathSync } from "node:fs";
import { invalidType } from "../../errors.ts";
import type { InsertedTask, NewTask, SqlTransaction } from "../store.ts";
import { insertRow } from "./columns.ts";
import type { Connection } from "./connection.ts";
import type { DriverTransaction, SqlValue } from "./driver.ts";
import { CREATED_ROW, holdersOf, keyedInsert, keyHolders, releaseExpired } from "./queries/insert.ts";
import {
  type CreatedRow,
  creatorsOf,
  holderGone,
  keysToFind,
  outcomesOf,
  uniqueKeysOf,
} from "../inserted.ts";
import { compile } from "./sql.ts";

/** A value now, or a promise of it: what a synchronous handle gives at once and an asynchronous one later. */
export type MaybePromise<T> = T | Promise<T>;

/** Continues with `value` at once when it is there, or once it arrives. */
export function after<T, U>(value: MaybePromise<T>, next: (value: T) => MaybePromise<U>): MaybePromise<U> {
  return isPromise(value) ? value.then(next) : next(value);
}

function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

/** Runs one statement through the application's transaction and gives its rows as arrays. */
export type RowsRunner = (query: SQL) => MaybePromise<unknown[][]>;

/** The hidden side of the transactions PrismQ hands out: the connection they belong to, and raw access. */
export const OWN_TRANSACTION = Symbol("prismq.ownTransaction");

export interface OwnTransaction {
  [OWN_TRANSACTION]: {
    /** The connection whose transaction this is. */
    owner: object;
    /** Runs one statement in the transaction; rows as arrays. */
    values(query: SQL): Promise<unknown[][]>;
  };
}

/**
 * Runs `fn` in an interactive write transaction on `conn`, with the handle `db.transaction()` gives:
 * plain SQL for the application, and the hidden side that lets an enqueue join the transaction.
 */
export function ownTransaction<T>(conn: Connection, fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
  return conn.transaction((tx) => {
    const handle: SqlTransaction & OwnTransaction = {
      // Booleans are stored as SQLite stores them, 1 and 0.
      execute: (text, args = []) =>
        tx.execute({
          sql: text,
          args: args.map((arg) => typeof arg === "boolean" ? Number(arg) : arg) as SqlValue[],
        }),
      [OWN_TRANSACTION]: { owner: conn, values: rowsRunnerOf(tx) },
    };
    return fn(handle);
  });
}

/** A runner of statements inside the transaction `tx` of PrismQ's own connection; rows as arrays. */
export function rowsRunnerOf(tx: DriverTransaction): (query: SQL) => Promise<unknown[][]> {
  return async (query) => (await tx.execute({ ...compile(query), raw: true })).values ?? [];
}

// deno-lint-ignore no-explicit-any
type DrizzleSqlite = BaseSQLiteDatabase<"sync" | "async", any, any, any>;

/** Where the queue's database is, to tell whether a foreign handle writes to the same one. */
export interface QueueLocation {
  /** The connection, which PrismQ's own transactions name as their owner. */
  owner: object;
  /** The database file's path; null for a server, ":memory:" in memory. */
  filePath: string | null;
}

/**
 * A runner for `handle`, checked to write to the queue's database.
 *
 * @param sync require a handle that answers synchronously
 * @throws {TypeError} for anything else, naming what to pass instead
 */
export function adoptTransaction(
  handle: unknown,
  location: QueueLocation,
  sync: boolean,
): MaybePromise<RowsRunner> {
  if (typeof handle === "object" && handle !== null && OWN_TRANSACTION in handle) {
    const own = (handle as OwnTransaction)[OWN_TRANSACTION];
    if (own.owner !== location.owner) {
      throw invalidType(
        "The tx given belongs to another database's transaction. Pass the handle that this queue's own " +
          "db.transaction() gives.",
      );
    }
    if (sync) {
      throw invalidType(
        "enqueueSync needs a synchronous Drizzle database or transaction (the libsql, better-sqlite3 or " +
          "bun:sqlite driver). Inside db.transaction(), use await queue.enqueue(…, { tx }).",
      );
    }
    return (query) => own.values(query);
  }
  if (!is(handle, BaseSQLiteDatabase)) {
    throw invalidType(
      "tx must be the handle PrismQ's db.transaction() gives, or a Drizzle SQLite database or transaction " +
        `on the queue's file; got ${describe(handle)}.`,
    );
  }
  const drizzle = handle as DrizzleSqlite;
  const run: RowsRunner = (query) => drizzle.values(query) as MaybePromise<unknown[][]>;
  const known = modes.get(handle);
  const mode = known ?? checkSameDatabase(run, location);
  const use = (mode: Mode): RowsRunner => {
    modes.set(handle, mode);
    if (sync && mode === "async") {
      throw invalidType(
        "enqueueSync needs a synchronous Drizzle database or transaction (the libsql, better-sqlite3 or " +
          "bun:sqlite driver); this one is asynchronous: use await queue.enqueue(…, { tx }).",
      );
    }
    if (!sync && mode === "sync" && is(handle, SQLiteTransaction)) {
      throw invalidType(
        "This Drizzle transaction is synchronous (its callback cannot wait for a promise), so an awaited " +
          "enqueue would land after it commits. Use queue.enqueueSync(…, { tx }) inside it.",
      );
    }
    return run;
  };
  if (isPromise(mode) && sync) {
    // The check is under way on an asynchronous handle, which enqueueSync cannot use: say so at once.
    mode.catch(() => {});
    return use("async");
  }
  return after(mode, use);
}

type Mode = "sync" | "async";

/** Whether each handle answers synchronously, for handles already found to be on the queue's database. */
const modes = new WeakMap<object, Mode>();

/**
 * Throws unless the handle's main database is the queue's file; says whether the handle answers
 * synchronously, which the check's own statement shows.
 */
function checkSameDatabase(run: RowsRunner, location: QueueLocation): MaybePromise<Mode> {
  if (location.filePath === ":memory:") {
    throw invalidType(
      "An in-memory queue cannot share a transaction with another connection: each connection to :memory: " +
        "has a database of its own. Use a file, or write through the queue's own db.transaction().",
    );
  }
  const queueFile = location.filePath;
  const rows = run(sql`PRAGMA database_list`);
  const check = (list: unknown[][]) => {
    // A server's file is on the server: there is nothing here to compare it with.
    if (queueFile === null) return;
    const main = list.find((row) => row[1] === "main");
    const file = typeof main?.[2] === "string" ? main[2] : "";
    if (file === "" || realPath(file) !== realPath(queueFile)) {
      throw invalidType(
        `The tx given writes to ${
          file === "" ? "an in-memory or temporary database" : `'${file}'`
        }, not to ` +
          `the queue's database '${queueFile}'. Open the application's Drizzle database on the queue's file.`,
      );
    }
  };
  if (isPromise(rows)) return rows.then((list) => (check(list), "async"));
  check(rows);
  return "sync";
}

function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return value.constructor?.name ? `a ${value.constructor.name}` : "an object";
}

/**
 * Inserts `tasks` through `run`, all in one statement (after releasing the window keys among theirs that
 * are over); a task whose idempotency key is taken, or whose `unique` key is held, gets the task that holds
 * it. Synchronous while `run` is.
 */
export function insertWithin(
  run: RowsRunner,
  tasks: readonly NewTask[],
  now: number,
): MaybePromise<InsertedTask[]> {
  if (tasks.length === 0) return [];
  const uniqueKeys = uniqueKeysOf(tasks);
  const released = uniqueKeys.length === 0 ? [] : run(releaseExpired(uniqueKeys, now));
  const insert = keyedInsert(JSON.stringify(tasks.map(insertRow)), now, CREATED_ROW);
  return after(released, () =>
    after(run(insert), (rows) => {
      const created = rows.map((row): CreatedRow => ({
        id: Number(row[0]),
        idempotencyKey: row[1] as string | null,
        uniqueKey: row[2] as string | null,
      }));
      const creators = creatorsOf(tasks, created);
      const keys = keysToFind(tasks, creators);
      const found = keys.idempotencyKeys.length + keys.uniqueKeys.length === 0
        ? []
        : run(holdersOf(keys.idempotencyKeys, keys.uniqueKeys));
      return after(found, (holders) => {
        const outcomes = outcomesOf(
          tasks,
          creators,
          keyHolders(holders.map((row) => ({ task: String(row[0]), matched: String(row[1]) }))),
        );
        // The transaction holds the write lock since its first write: no holder can go away meanwhile.
        return outcomes.map((outcome, i) => {
          if (!outcome) throw holderGone(tasks[i]!);
          return outcome;
        });
      });
    }));
}
