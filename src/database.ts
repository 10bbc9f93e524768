/**
 * The handle on one queue database, shared by producers and workers.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import { DatabaseClock } from "./database_clock.ts";
import type { PostgresStoreOptions } from "./store/postgres/options.ts";
import type { ConnectionOptions } from "./store/sqlite/connection.ts";
import { redactLocation } from "./db_url.ts";
import { openStore } from "./store/registry.ts";
import { attachStore } from "./store/store_of.ts";
import type { SqlTransaction, Store } from "./store/store.ts";
import { BackupRefusedError, invalidRange, invalidType } from "./errors.ts";

export type { SynchronousMode } from "./store/sqlite/connection.ts";
export type { SqlResult, SqlTransaction } from "./store/store.ts";

/**
 * Connection settings (a SQLite file's or libSQL server's, and a PostgreSQL server's: each store refuses the
 * others'), and whose clock times are compared on.
 */
export interface QueueDatabaseOptions extends ConnectionOptions, PostgresStoreOptions {
  /**
   * On a database server, `"database"` corrects every clock that queues and workers on this handle read to
   * the server's (see {@link QueueDatabase.clockFor}); `"local"` uses each clock as it is, for hosts whose
   * clocks are known to agree, or tests that need exact readings of their own clock. An embedded file has
   * one machine's clock either way. @default "database"
   */
  timeSource?: "database" | "local" | undefined;
}

/**
 * A queue database: an embedded SQLite file, `:memory:`, a libSQL server, or a PostgreSQL server. The store
 * that opens it is
 * chosen by the location's URL scheme (`store/registry.ts`); queues and workers use it, and nothing public
 * exposes it.
 *
 * @example
 * ```ts
 * import { QueueDatabase } from "prismq";
 * const db = new QueueDatabase(":memory:");
 * await db.initializeSchema();
 * await db.transaction(async (tx) => {
 *   await tx.execute("INSERT INTO task_queue (type, payload) VALUES (?, ?)", ["test_task", "{}"]);
 * });
 * await db.close();
 * ```
 */
export class QueueDatabase {
  /**
   * The URL the database is reached by (on SQLite, the libSQL URL: `file:…` for a path), as it may be shown:
   * without a password or query, which may hold credentials.
   */
  readonly url: string;
  readonly #store: Store;
  #wakeListeners = new Set<() => void>();
  #finishedListeners = new Set<() => void>();
  #closing: Promise<void> | undefined;
  readonly #clocks = new WeakMap<Clock, DatabaseClock>();
  readonly #correctClocks: boolean;

  /**
   * Nothing is opened yet: the first statement (usually `initializeSchema()`) opens the file or reaches
   * the server, and reports a path, URL or server that does not work as a {@link DatabaseError}.
   *
   * @param location `":memory:"`, a file path, or a URL of a scheme a store opens: `file:`, a libSQL
   *   server's (`libsql:`, `http(s):`, `ws(s):`), or a PostgreSQL server's (`postgres:`, `postgresql:`)
   * @param options connection settings; the auth token defaults to `PRISMQ_DB_AUTH_TOKEN`
   * @throws {DatabaseError} with code `DATABASE_URL_INVALID` for a location that cannot be read, or of a
   *   scheme no store opens (the message lists those that are)
   */
  constructor(location: string = "prismq.db", options: QueueDatabaseOptions = {}) {
    if (typeof options !== "object" || options === null) {
      throw invalidType("The options must be an object.");
    }
    const { timeSource = "database", ...connectionOptions } = options;
    if (timeSource !== "database" && timeSource !== "local") {
      throw invalidRange(`timeSource must be "database" or "local", got ${JSON.stringify(timeSource)}.`);
    }
    const { store, url } = openStore(location, connectionOptions);
    this.url = redactLocation(url);
    this.#store = store;
    attachStore(this, store);
    this.#correctClocks = timeSource === "database" && store.serverTime !== undefined;
  }

  /**
   * The clock to store and compare times by, for a queue or worker whose own clock is `local`: `local`
   * itself on an embedded file (one machine, one clock), and on a server, `local` corrected to the server's
   * clock, so that processes on hosts whose clocks disagree by minutes still agree on when a lease expires
   * and when a task is due. Elapsed time stays the local monotonic clock. One corrected clock per local
   * clock, shared by everything on this handle.
   */
  clockFor(local: Clock): Clock {
    const serverTime = this.#store.serverTime;
    if (!this.#correctClocks || serverTime === undefined) return local;
    let corrected = this.#clocks.get(local);
    if (!corrected) {
      corrected = new DatabaseClock(local, serverTime);
      this.#clocks.set(local, corrected);
    }
    return corrected;
  }

  /** Creates or upgrades the tables. Idempotent, and safe when several processes call it at once. */
  async initializeSchema(): Promise<void> {
    await this.#store.migrate(Date.now());
  }

  /** Measures `clock`'s offset from the server's, if it is one this handle corrects and it never was. */
  async syncClock(clock: Clock): Promise<void> {
    if (clock instanceof DatabaseClock && !clock.synced) await clock.sync();
  }

  /**
   * Runs `fn` in a write transaction: committed when it resolves, rolled back when it throws. Keep it short:
   * on a local file, this process's other database work waits until it ends. `tx.execute(sql, args)` takes
   * the SQL of the database's own dialect: SQLite's with `?` placeholders, or PostgreSQL's with `$1`, `$2`….
   */
  async transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    const result = await this.#store.transaction(fn);
    this.notifyTasksAvailable();
    return result;
  }

  /**
   * Writes a consistent copy of the database to the file at `path` (relative to the working folder) while
   * other processes keep working (on SQLite, `VACUUM INTO`): to a temporary file beside it, flushed to disk,
   * then renamed into place, so that a failed backup leaves any previous file intact.
   *
   * @param options.overwrite replace an existing file @default false
   * @returns the copy's absolute path and size
   * @throws {BackupRefusedError} before writing anything, when the folder is missing, the target is a folder
   *   or an existing file (without `overwrite`), or a file of a database this process has open (the
   *   database, its `-wal`, `-shm` or `-journal`, by any path or link), or the database is one its store
   *   cannot copy to a local file (a server's)
   */
  async backup(
    path: string,
    options: { overwrite?: boolean } = {},
  ): Promise<{ path: string; bytes: number }> {
    if (typeof path !== "string" || path.trim() === "") throw invalidType("backup() needs a file path.");
    const { backupTo, kind } = this.#store;
    if (backupTo === undefined) {
      throw new BackupRefusedError(
        `Cannot back up the database at '${this.url}': it is ${kind}, which PrismQ cannot copy to a local ` +
          `file. Back it up with the database's own tools.`,
      );
    }
    return await backupTo(path, { overwrite: options.overwrite === true });
  }

  /** Wakes this process's idle workers: new tasks may be runnable. Called after every enqueue. */
  notifyTasksAvailable(): void {
    for (const listener of this.#wakeListeners) listener();
  }

  /** Calls `listener` whenever this process adds tasks; returns the function that unsubscribes it. */
  onTasksAvailable(listener: () => void): () => void {
    this.#wakeListeners.add(listener);
    return () => this.#wakeListeners.delete(listener);
  }

  /** Tells this process's `Queue.waitFor` calls that tasks finished. Called by workers and `Queue.cancel`. */
  notifyTasksFinished(): void {
    for (const listener of this.#finishedListeners) listener();
  }

  /** Calls `listener` whenever tasks finish in this process; returns the function that unsubscribes it. */
  onTasksFinished(listener: () => void): () => void {
    this.#finishedListeners.add(listener);
    return () => this.#finishedListeners.delete(listener);
  }

  /**
   * Closes this handle; resolves once its connection is given back. Other handles on the same file in this
   * process share its connection and keep it open. Stop workers first. Closing again returns the same
   * promise.
   */
  close(): Promise<void> {
    return this.#closing ??= this.#store.close();
  }
}
