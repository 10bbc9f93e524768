/**
 * The handle on one queue database, shared by producers and workers.
 *
 * @module
 */
import { Connection, type ConnectionOptions } from "./store/sqlite/connection.ts";
import { SqliteStore } from "./store/sqlite/store.ts";
import type { SqlTransaction, Store } from "./store/store.ts";

export type {
  ConnectionOptions as QueueDatabaseOptions,
  SynchronousMode,
} from "./store/sqlite/connection.ts";
export type { SqlResult, SqlTransaction } from "./store/store.ts";

/**
 * A queue database: an embedded SQLite file, `:memory:`, or a libSQL server.
 *
 * @example
 * ```ts
 * import { QueueDatabase } from "./mod.ts";
 * const db = new QueueDatabase(":memory:");
 * await db.initializeSchema();
 * await db.transaction(async (tx) => {
 *   await tx.execute("INSERT INTO task_queue (type, payload) VALUES (?, ?)", ["test_task", "{}"]);
 * });
 * db.close();
 * ```
 */
export class QueueDatabase {
  /** The libSQL URL in use. */
  readonly url: string;
  /** The storage operations. Internal: queues and workers call it; applications use `Queue` and `WorkerEngine`. */
  readonly store: Store;
  #wakeListeners = new Set<() => void>();
  #closed = false;

  /**
   * Nothing is opened yet: the first statement (usually `initializeSchema()`) opens the file or reaches
   * the server, and reports a path, URL or server that does not work as a {@link DatabaseError}.
   *
   * @param location `":memory:"`, a file path, or a libSQL URL (`file:`, `libsql:`, `http(s):`, `ws(s):`)
   * @param options connection settings; the auth token defaults to `PRISMQ_DB_AUTH_TOKEN`
   */
  constructor(location: string = "prismq.db", options: ConnectionOptions = {}) {
    const connection = Connection.acquire(location, options);
    this.url = connection.url;
    this.store = new SqliteStore(connection);
  }

  /** Creates or upgrades the tables. Idempotent, and safe when several processes call it at once. */
  async initializeSchema(): Promise<void> {
    await this.store.migrate(Date.now());
  }

  /**
   * Runs `fn` in a write transaction: committed when it resolves, rolled back when it throws. Keep it short:
   * on a local file, this process's other database work waits until it ends.
   */
  async transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    const result = await this.store.transaction(fn);
    this.notifyTasksAvailable();
    return result;
  }

  /**
   * Writes a consistent copy of the database to the file at `path` (relative to the working folder) while
   * other processes keep working (SQLite's `VACUUM INTO`): to a temporary file beside it, flushed to disk,
   * then renamed into place, so that a failed backup leaves any previous file intact.
   *
   * @param options.overwrite replace an existing file @default false
   * @returns the copy's absolute path and size
   * @throws {BackupRefusedError} before writing anything, when the folder is missing, the target is a folder
   *   or an existing file (without `overwrite`), or a file of a database this process has open (the
   *   database, its `-wal`, `-shm` or `-journal`, by any path or link), or the database is on a server
   */
  async backup(
    path: string,
    options: { overwrite?: boolean } = {},
  ): Promise<{ path: string; bytes: number }> {
    if (typeof path !== "string" || path.trim() === "") throw new TypeError("backup() needs a file path.");
    return await this.store.backupTo(path, { overwrite: options.overwrite === true });
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

  /**
   * Closes this handle. Other handles on the same file in this process share its connection and keep it
   * open. Stop workers first. Closing twice does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.store.close();
  }
}
