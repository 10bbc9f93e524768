/**
 * The driver for an embedded SQLite file, on the engine `engines.ts` chooses (`node:sqlite` on Deno and
 * Bun, `libsql` elsewhere) rather than through `@libsql/client`, which prepares every statement anew on
 * every call. Holding prepared statements is what makes a one-row enqueue cost one step of the statement
 * rather than a parse, a plan and a step (the benchmark's R1′ against R1: about 2.5× the throughput), and
 * it keeps native statements from piling up until the garbage collector finalizes them.
 *
 * Every call runs synchronously on the one connection, so a statement never interleaves with another; the
 * caller (`Connection`) keeps interactive transactions exclusive.
 *
 * @module
 */
import { LibsqlError } from "@libsql/core/api";
import { resolve } from "node:path";
import type { DriverTransaction, SqlDriver, SqlRow, SqlStatement, StatementResult } from "./driver.ts";
import { chooseEngine, type Engine, type EngineConnection, type EngineStatement } from "./engines.ts";
import { FileIdentity } from "./file_identity.ts";

/** Prepared statements kept per connection; the store uses a few dozen distinct texts. */
const STATEMENT_CACHE_SIZE = 256;

interface Prepared {
  statement: EngineStatement;
  /** Whether it writes, and so must hold the write lock before it starts. */
  writes: boolean;
  /** Whether it returns rows; asked of the driver once, since every question is a native call. */
  reader: boolean;
}

function run({ statement, reader }: Prepared, args: readonly unknown[], raw: boolean): StatementResult {
  if (reader) {
    const rows = statement.all(args);
    if (raw) {
      return { rows: [], values: rows as unknown[][], rowsAffected: rows.length, lastInsertRowid: undefined };
    }
    return { rows: rows as SqlRow[], rowsAffected: rows.length, lastInsertRowid: undefined };
  }
  const info = statement.run(args);
  return { rows: [], rowsAffected: Number(info.changes), lastInsertRowid: Number(info.lastInsertRowid) };
}

const WRITES = /^\s*(INSERT|UPDATE|DELETE|REPLACE)\b/i;

export class LocalDriver implements SqlDriver {
  readonly #path: string;
  readonly #engine: Engine;
  #db: EngineConnection | null = null;
  readonly #statements = new Map<string, Prepared>();
  /** Settings (PRAGMAs) applied whenever the connection opens. */
  #settings: string[] = [];
  #closed = false;
  /** Whether the file at the path is still the one opened; none in memory. */
  readonly #file: FileIdentity | undefined;
  /** Set while an interactive transaction is open, which a reset of the connection would end. */
  #interactive = false;

  /**
   * Opens nothing yet: the file is opened by the first statement, so that its errors surface there. A
   * relative path is resolved now, once: the file opened, and the one checked for being deleted or moved,
   * stay the one it named when the process was in its working folder of now, whatever `chdir()` does later.
   */
  /** @param path the database file's path (see `parseDatabaseLocation`), or `:memory:` */
  constructor(path: string, engine: Engine = chooseEngine()) {
    const inMemory = path === ":memory:";
    this.#path = inMemory ? path : resolve(path);
    this.#engine = engine;
    this.#file = inMemory ? undefined : new FileIdentity(this.#path);
  }

  /** The absolute path of the database file; `:memory:` for a database in memory. */
  get path(): string {
    return this.#path;
  }

  /** Which SQLite engine runs the file. */
  get engine(): Engine["name"] {
    return this.#engine.name;
  }

  /**
   * Applies `pragmas` now (in place of any given before), and again whenever the connection opens anew.
   * Some read the schema, and so can find the database busy: then none may have been applied, and
   * calling it again is safe.
   */
  configure(pragmas: string[]): void {
    this.#settings = [...pragmas];
    for (const pragma of pragmas) this.#exec(`PRAGMA ${pragma}`);
  }

  #open(): EngineConnection {
    if (this.#db) return this.#db;
    if (this.#closed) throw new LibsqlError("The database connection is closed.", "CLIENT_CLOSED");
    try {
      this.#db = this.#engine.open(this.#path);
      for (const pragma of this.#settings) this.#db.exec(`PRAGMA ${pragma}`);
    } catch (error) {
      this.#db = null;
      throw this.#engine.toError(error);
    }
    this.#file?.opened();
    return this.#db;
  }

  #prepare(sql: string, raw: boolean): Prepared {
    const key = raw ? `raw:${sql}` : sql;
    let prepared = this.#statements.get(key);
    if (prepared) return prepared;
    let statement: EngineStatement;
    try {
      statement = this.#open().prepare(sql, raw);
    } catch (error) {
      throw this.#engine.toError(error);
    }
    prepared = { statement, writes: WRITES.test(sql), reader: statement.reader };
    if (this.#statements.size >= STATEMENT_CACHE_SIZE) {
      this.#statements.delete(this.#statements.keys().next().value!);
    }
    this.#statements.set(key, prepared);
    return prepared;
  }

  /**
   * Runs one statement synchronously. On libsql, a write outside a transaction takes the write lock first,
   * with `BEGIN IMMEDIATE`: a statement that fails for want of the lock is left unfinished by that driver (it
   * cannot be reset), and an unfinished write keeps its transaction, and the lock, open under whatever runs
   * next on the connection. `BEGIN` fails cleanly instead, and then the write cannot be refused. On
   * `node:sqlite` a refused statement is reset, so the write runs as it is, one step fewer.
   */
  executeNow({ sql, args, raw = false }: SqlStatement): StatementResult {
    this.#file?.check();
    const prepared = this.#prepare(sql, raw);
    const own = prepared.writes && !this.#engine.resetsRefusedStatements && !this.#inTransaction();
    if (own) this.#exec("BEGIN IMMEDIATE");
    let result: StatementResult;
    try {
      result = run(prepared, args, raw);
    } catch (thrown) {
      const error = this.#engine.toError(thrown);
      if (own) this.#rollBackIfOpen();
      // On libsql a read refused for a lock (rare in WAL mode) is left unfinished too: start on a fresh
      // connection, unless that would end a transaction its owner still holds.
      const refused = error instanceof LibsqlError && /^SQLITE_(BUSY|LOCKED)/.test(error.code);
      if (refused && !this.#engine.resetsRefusedStatements && !this.#interactive) this.#reset();
      throw error;
    }
    if (own) this.#commit();
    return result;
  }

  /** COMMIT; if it fails, the transaction is rolled back rather than left open under later statements. */
  #commit(): void {
    try {
      this.#exec("COMMIT");
    } catch (error) {
      this.#rollBackIfOpen();
      throw error;
    }
  }

  #rollBackIfOpen(): void {
    try {
      if (this.#inTransaction()) this.#exec("ROLLBACK");
    } catch {
      // A failed rollback still ends the transaction; the error that led here is the one to report.
    }
  }

  #exec(sql: string): void {
    try {
      this.#open().exec(sql);
    } catch (error) {
      throw this.#engine.toError(error);
    }
  }

  #inTransaction(): boolean {
    return this.#db?.inTransaction ?? false;
  }

  execute(statement: SqlStatement): Promise<StatementResult> {
    try {
      return Promise.resolve(this.executeNow(statement));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Statements in one write transaction, all or nothing. */
  batch(statements: readonly SqlStatement[]): Promise<StatementResult[]> {
    try {
      this.#exec("BEGIN IMMEDIATE");
      let results: StatementResult[];
      try {
        results = statements.map((statement) => this.executeNow(statement));
      } catch (error) {
        this.#rollBackIfOpen();
        throw error;
      }
      this.#commit();
      return Promise.resolve(results);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * An interactive write transaction. SQLite itself may end it early (an `OR ROLLBACK` conflict, a
   * trigger's `RAISE(ROLLBACK)`, a full disk): from then on every call refuses, so that nothing after
   * that point is committed on its own.
   */
  transaction(): Promise<DriverTransaction> {
    try {
      this.#exec("BEGIN IMMEDIATE");
    } catch (error) {
      return Promise.reject(error);
    }
    this.#interactive = true;
    let closed = false;
    const finish = () => {
      closed = true;
      this.#interactive = false;
    };
    const open = () => this.#inTransaction();
    const ended = () =>
      new LibsqlError(
        "The transaction has ended: SQLite rolled it back after an error, so nothing in it was committed.",
        "TRANSACTION_CLOSED",
      );
    const guarded = <T>(work: () => T): Promise<T> => {
      if (closed) return Promise.reject(new LibsqlError("The transaction has ended.", "TRANSACTION_CLOSED"));
      if (!this.#inTransaction()) {
        finish();
        return Promise.reject(ended());
      }
      try {
        return Promise.resolve(work());
      } catch (error) {
        return Promise.reject(error);
      }
    };
    return Promise.resolve({
      execute: (statement: SqlStatement) => guarded(() => this.executeNow(statement)),
      executeMultiple: (sql: string) => guarded(() => this.#exec(sql)),
      commit: () =>
        guarded(() => {
          try {
            this.#commit();
          } finally {
            finish();
          }
        }),
      rollback: () => {
        if (closed) return Promise.resolve();
        finish();
        this.#rollBackIfOpen();
        return Promise.resolve();
      },
      close: () => {
        if (closed) return;
        finish();
        this.#rollBackIfOpen();
      },
      get closed() {
        return closed || !open();
      },
    });
  }

  /** Drops the connection and its statements; the next statement opens a fresh one. */
  #reset(): void {
    this.#statements.clear();
    const db = this.#db;
    this.#db = null;
    try {
      db?.close();
    } catch {
      // Closing a connection whose file vanished can fail; there is nothing left to release.
    }
  }

  close(): void {
    this.#closed = true;
    this.#reset();
  }
}
