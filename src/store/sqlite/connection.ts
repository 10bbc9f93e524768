/**
 * One database connection and the rules for using it safely from many async callers: connection settings,
 * exclusive interactive transactions, retries of transient `SQLITE_BUSY`, and clear errors (written in
 * `database_errors.ts`) for databases that cannot be used.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { type FSWatcher, watch } from "node:fs";
import { resolve } from "node:path";
import { setImmediate } from "node:timers";
import { type DatabaseLocation, parseDatabaseLocation } from "../../db_url.ts";
import { invalidRange, invalidType } from "../../errors.ts";
import { readEnv } from "../../platform.ts";
import { MAX_TIMER_MS } from "../../timers.ts";
import { duration, wholeNumber } from "../../checks.ts";
import { busyCode, isDatabaseLevelError, toDatabaseError } from "./database_errors.ts";
import type { DriverTransaction, SqlDriver, SqlStatement, StatementResult } from "./driver.ts";
import { chooseEngine, type Engine } from "./engines.ts";
import { LocalDriver } from "./local_driver.ts";
import { RemoteDriver } from "./remote_driver.ts";

/** How a file database syncs to disk. `normal` is safe against application crashes; `full` also against power loss. */
export type SynchronousMode = "off" | "normal" | "full" | "extra";

/** Options for opening a database. */
export interface ConnectionOptions {
  /** Auth token for a libSQL server. @default the `PRISMQ_DB_AUTH_TOKEN` environment variable */
  authToken?: string | undefined;
  /**
   * How long a statement waits, in all, for another process to release the write lock before it fails
   * with a clear error. On a file, waiting never blocks the event loop. @default 30000
   */
  busyTimeoutMs?: number | undefined;
  /** `PRAGMA synchronous` for file databases. @default "normal" */
  synchronous?: SynchronousMode | undefined;
  /**
   * How long one call to a libSQL server may wait for its answer before it fails with a clear error (a
   * write under way then may or may not have been applied). @default 30000
   */
  requestTimeoutMs?: number | undefined;
}

const DEFAULT_BUSY_TIMEOUT_MS = 30_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

// Connections to local files are shared per process (keyed in the global symbol registry, so that two
// copies of this module share them too): two connections to one file in one thread would only take the write
// lock from each other (and while setting up, SQLite waits for it synchronously, which would deadlock).
const SHARED_KEY = Symbol.for("prismq.sharedConnections");
type WithShared = typeof globalThis & {
  [SHARED_KEY]?: Map<string, { connection: Connection; path: string }>;
};

/** The absolute paths of the database files this process has open. */
export function openDatabaseFiles(): string[] {
  return [...((globalThis as WithShared)[SHARED_KEY]?.values() ?? [])].map((entry) => entry.path);
}

/**
 * The interactive transaction the running code is inside, by the promise that settles when it ends: a call
 * on the same connection from inside would wait for that end, which waits for the call.
 */
const insideTransaction = new AsyncLocalStorage<Promise<void>>();

/** The connection to one database, shared by every queue, worker and transaction that uses it. */
export class Connection {
  readonly url: string;
  /** Where the database is: in memory, in a local file, or on a server. */
  readonly kind: DatabaseLocation["kind"];
  readonly isRemote: boolean;
  /**
   * The database file's absolute path, resolved once when the connection was made; `:memory:` for a
   * database in memory, null for a server.
   */
  readonly filePath: string | null;
  readonly #driver: SqlDriver;
  readonly #location: string;
  readonly #options: ConnectionOptions;
  #ready: Promise<void>;
  /** Set once configuration has succeeded, so that statements can skip awaiting `#ready`. */
  #configured = false;
  #active = 0;
  #exclusive: Promise<void> | null = null;
  #drained: (() => void)[] = [];

  /**
   * The connection for `location`: a new one, or, for a file this process has open already, that one
   * (whose settings were fixed by whoever opened it first). Give it back with {@link release}.
   *
   * @param engine the SQLite engine for a file, where the caller must choose (the store conformance suite
   *   runs every engine in one process) @default chooseEngine(), from `PRISMQ_SQLITE_ENGINE`
   */
  static acquire(location: string, options: ConnectionOptions = {}, engine?: Engine): Connection {
    checkOptions(options);
    const where = parseDatabaseLocation(location);
    if (where.kind !== "file") return new Connection(where, location, options, engine);
    const shared = ((globalThis as WithShared)[SHARED_KEY] ??= new Map());
    // Keyed by the absolute path, as the driver opens it: the same relative path after a chdir() is
    // another file, and `x.db`, `./x.db` and `file:///abs/x.db` are one.
    const key = resolve(where.path);
    const entry = shared.get(key);
    if (entry) {
      entry.connection.#users++;
      return entry.connection;
    }
    const connection = new Connection(where, location, options, engine);
    shared.set(key, { connection, path: connection.filePath! });
    connection.#onClose = () => shared.delete(key);
    return connection;
  }

  #users = 1;
  #onClose: () => void = () => {};

  private constructor(
    where: DatabaseLocation,
    location: string,
    options: ConnectionOptions,
    engine?: Engine,
  ) {
    this.url = where.url;
    this.kind = where.kind;
    this.#location = location;
    this.#options = options;
    this.isRemote = where.kind === "server";
    const authToken = options.authToken ?? readEnv("PRISMQ_DB_AUTH_TOKEN");
    try {
      const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
      const local = where.kind === "server"
        ? null
        : new LocalDriver(where.kind === "file" ? where.path : ":memory:", engine ?? chooseEngine());
      this.#driver = local ?? new RemoteDriver(this.url, authToken, requestTimeoutMs);
      this.filePath = local?.path ?? null;
    } catch (error) {
      throw toDatabaseError(error, location);
    }
    this.#ready = this.#configure();
    // A failed configuration surfaces on first use; do not let it be an unhandled rejection meanwhile.
    this.#ready.catch(() => {});
  }

  /**
   * Applies the connection's settings; a failure surfaces through `#ready`. SQLite never waits for a lock
   * itself here or later: its wait would block this thread (handlers, timers, everything), it sleeps in
   * whole milliseconds, and in some cases (a database another process is turning to WAL) it gives up at
   * once. Every step that takes a lock runs under {@link #retryWhileBusy} instead, within `busyTimeoutMs`.
   */
  async #configure(): Promise<void> {
    if (this.isRemote) return void (this.#configured = true);
    const synchronous = this.#options.synchronous ?? "normal";
    const driver = this.#driver as LocalDriver;
    try {
      await this.#retryWhileBusy(() => {
        // busy_timeout first: some of the others read the schema, which takes a lock.
        driver.configure([
          "busy_timeout = 0",
          `synchronous = ${synchronous.toUpperCase()}`,
          "foreign_keys = ON",
        ]);
        // Fails at once on a file that is not a database, rather than at the first real statement.
        driver.executeNow({ sql: "SELECT count(*) FROM sqlite_schema", args: [] });
        // Kept by the file itself, so set once rather than on every reopening of the connection.
        if (this.kind === "file") driver.executeNow({ sql: "PRAGMA journal_mode = WAL", args: [] });
        return Promise.resolve();
      });
    } catch (error) {
      throw toDatabaseError(error, this.#location);
    }
    this.#configured = true;
  }

  /**
   * Runs one statement at once, when nothing stands in its way: a configured file, no transaction of this
   * process open on it, the database not locked by another. Undefined when it did not run and must take
   * {@link execute}'s general path.
   */
  executeIfFree(statement: SqlStatement): StatementResult | undefined {
    if (!this.#configured || this.#exclusive || !(this.#driver instanceof LocalDriver)) return undefined;
    try {
      return this.#driver.executeNow(statement);
    } catch (error) {
      if (!busyCode(error)) throw this.#describe(error);
      return undefined;
    }
  }

  /** Runs one statement; see {@link run}. */
  execute(statement: SqlStatement): Promise<StatementResult> {
    // The common case on a file, kept free of extra promise hops: nothing to wait for, and the statement
    // runs synchronously. Anything unusual (a busy database) takes the general path below.
    try {
      const result = this.executeIfFree(statement);
      if (result !== undefined) return Promise.resolve(result);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.run(() => this.#driver.execute(statement));
  }

  /** Runs statements as one write transaction; see {@link run}. */
  batch(statements: readonly SqlStatement[]): Promise<StatementResult[]> {
    return this.run(() => this.#driver.batch(statements));
  }

  #describe(error: unknown): unknown {
    return isDatabaseLevelError(error) ? toDatabaseError(error, this.#location) : error;
  }

  /**
   * Runs one operation (a statement or a batch), after any open interactive transaction has finished,
   * retrying it while the database is busy. An operation must be one atomic call on the driver: a failed
   * one changed nothing, so running it again is safe.
   */
  async run<T>(operation: () => Promise<T>): Promise<T> {
    await this.#ready;
    while (this.#exclusive) await this.#waitForTransaction();
    this.#active++;
    try {
      return await this.#retryWhileBusy(operation);
    } finally {
      this.#active--;
      if (this.#active === 0) { for (const wake of this.#drained.splice(0)) wake(); }
    }
  }

  /**
   * Runs `fn` inside a write transaction (`BEGIN IMMEDIATE`) that no other operation of this connection
   * can interleave with: on a local file every statement shares one connection, so the others wait.
   * Committed when `fn` resolves, rolled back when it throws.
   */
  async transaction<T>(fn: (tx: DriverTransaction) => Promise<T>): Promise<T> {
    await this.#ready;
    while (this.#exclusive) await this.#waitForTransaction();
    let release!: () => void;
    const exclusive = this.isRemote ? null : new Promise<void>((resolve) => (release = resolve));
    this.#exclusive = exclusive;
    try {
      while (exclusive && this.#active > 0) await new Promise<void>((resolve) => this.#drained.push(resolve));
      const tx = await this.#retryWhileBusy(() => this.#driver.transaction());
      try {
        const result = exclusive ? await insideTransaction.run(exclusive, () => fn(tx)) : await fn(tx);
        await tx.commit();
        return result;
      } catch (error) {
        if (!tx.closed) await tx.rollback();
        throw error;
      } finally {
        tx.close();
      }
    } catch (error) {
      throw this.#describe(error);
    } finally {
      if (exclusive) {
        this.#exclusive = null;
        release();
      }
    }
  }

  /**
   * Waits for the open interactive transaction to end, unless the caller runs inside it: then it could
   * never end, and the caller learns so at once.
   */
  #waitForTransaction(): Promise<void> {
    const exclusive = this.#exclusive!;
    if (insideTransaction.getStore() === exclusive) {
      return Promise.reject(
        invalidType(
          "This call was made inside db.transaction() on the same database, so it would wait for the " +
            "transaction to end, which waits for this call. Inside a transaction, write through it: pass " +
            "{ tx } to enqueue or enqueueMany, or use tx.execute(); make other calls after it.",
        ),
      );
    }
    return exclusive;
  }

  async #retryWhileBusy<T>(operation: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const budgetMs = this.#options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    for (let attempt = 1;; attempt++) {
      try {
        return await operation();
      } catch (error) {
        if (!busyCode(error)) throw this.#describe(error);
        if (performance.now() - started >= budgetMs) throw this.#describe(error);
        await busyPause(attempt);
      }
    }
  }

  #commitListeners = new Set<() => void>();
  #walWatcher: FSWatcher | null = null;

  /**
   * Calls `listener` when the file's write-ahead log changes, which is what every commit by any process
   * does: an idle worker learns of new tasks within about a millisecond, without polling. Nothing
   * happens where the file system cannot be watched; only a file has a log.
   */
  watchCommits(listener: () => void): () => void {
    if (this.kind !== "file") throw new TypeError("Only a database file has a write-ahead log to watch.");
    this.#commitListeners.add(listener);
    if (!this.#walWatcher) this.#startWalWatcher();
    return () => {
      this.#commitListeners.delete(listener);
      if (this.#commitListeners.size === 0) this.#stopWalWatcher();
    };
  }

  #startWalWatcher(): void {
    try {
      const watcher = watch(`${this.filePath}-wal`, { persistent: false }, () => {
        for (const listener of this.#commitListeners) listener();
      });
      // The log can vanish (every connection closed, in every process); then polling alone carries on.
      watcher.on("error", () => this.#stopWalWatcher());
      this.#walWatcher = watcher;
    } catch {
      // No log yet, or no watching here: polling alone carries on.
    }
  }

  #stopWalWatcher(): void {
    this.#walWatcher?.close();
    this.#walWatcher = null;
  }

  /** Gives the connection back; the last user closes it. */
  release(): void {
    if (--this.#users > 0) return;
    this.#stopWalWatcher();
    this.#onClose();
    this.#driver.close();
  }
}

/** @throws {TypeError | RangeError} naming the first option that is wrong */
function checkOptions(options: ConnectionOptions): void {
  if (typeof options !== "object" || options === null) throw invalidType("The options must be an object.");
  duration("busyTimeoutMs", options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS);
  wholeNumber("requestTimeoutMs", options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, 1, MAX_TIMER_MS);
  const synchronous = options.synchronous ?? "normal";
  if (!["off", "normal", "full", "extra"].includes(synchronous)) {
    throw invalidRange(`synchronous must be "off", "normal", "full" or "extra", got "${synchronous}".`);
  }
  if (options.authToken !== undefined && typeof options.authToken !== "string") {
    throw invalidType("authToken must be a string.");
  }
}

/**
 * The wait before trying a busy statement again. Another process usually holds the write lock for a
 * millisecond or less, so the first retries only let this process's other work run; later ones back off,
 * with jitter so that competing processes do not retry in step. A failed attempt changed nothing.
 */
function busyPause(attempt: number): Promise<void> {
  if (attempt <= 3) return new Promise((resolve) => setImmediate(resolve));
  const delay = Math.min(2, 2 ** (attempt - 4)) * (0.5 + Math.random());
  return new Promise((resolve) => setTimeout(resolve, delay));
}
