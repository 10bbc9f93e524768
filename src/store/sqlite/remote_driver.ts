/**
 * The driver for a libSQL server (sqld, Turso), on `@libsql/client`, which speaks its protocol.
 *
 * @module
 */
import type { Client, InStatement, ResultSet } from "@libsql/client";
import { LibsqlError } from "@libsql/core/api";
import type { DriverTransaction, SqlDriver, SqlRow, SqlStatement, StatementResult } from "./driver.ts";

function toResult(result: ResultSet, raw: boolean | undefined): StatementResult {
  if (raw) {
    return {
      rows: [],
      values: result.rows.map((row) => Array.from(row)),
      rowsAffected: result.rowsAffected,
      lastInsertRowid: result.lastInsertRowid === undefined ? undefined : Number(result.lastInsertRowid),
    };
  }
  const rows = result.rows.map((row) => {
    const object: SqlRow = {};
    result.columns.forEach((column, i) => (object[column] = row[i]));
    return object;
  });
  return {
    rows,
    rowsAffected: result.rowsAffected,
    lastInsertRowid: result.lastInsertRowid === undefined ? undefined : Number(result.lastInsertRowid),
  };
}

/**
 * The client reports a server it cannot reach with the runtime's own fetch error (a TypeError, worded
 * differently by each runtime); as a LibsqlError it is reported, like every database failure, as one.
 */
async function reaching<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof LibsqlError || !(error instanceof Error)) throw error;
    throw new LibsqlError(error.message, "SERVER_UNREACHABLE", undefined, undefined, error);
  }
}

function toClientStatement({ sql, args }: SqlStatement): InStatement {
  return { sql, args: args as InStatement extends { args?: infer A } ? A : never };
}

export class RemoteDriver implements SqlDriver {
  /**
   * `@libsql/client` is evaluated with the first server connection rather than at start: with what it
   * imports, it is about a fifth of the start of every `prismq` command, most of which only open files.
   * The specifier is a literal, so the bundlers still link it in at build time.
   */
  readonly #loaded: Promise<Client>;
  #closed = false;

  constructor(url: string, authToken: string | undefined) {
    this.#loaded = import("@libsql/client").then(({ createClient }) => createClient({ url, authToken }));
    // A bad URL is reported by the first statement, as an embedded file's errors are.
    this.#loaded.catch(() => {});
  }

  async #client(): Promise<Client> {
    const client = await this.#loaded;
    if (this.#closed) throw new LibsqlError("The database connection is closed.", "CLIENT_CLOSED");
    return client;
  }

  async execute(statement: SqlStatement): Promise<StatementResult> {
    const client = await this.#client();
    return toResult(await reaching(client.execute(toClientStatement(statement))), statement.raw);
  }

  async batch(statements: readonly SqlStatement[]): Promise<StatementResult[]> {
    const client = await this.#client();
    const results = await reaching(client.batch(statements.map(toClientStatement), "write"));
    return results.map((result, i) => toResult(result, statements[i].raw));
  }

  async transaction(): Promise<DriverTransaction> {
    const tx = await reaching((await this.#client()).transaction("write"));
    return {
      execute: async (statement) =>
        toResult(await reaching(tx.execute(toClientStatement(statement))), statement.raw),
      executeMultiple: (sql) => reaching(tx.executeMultiple(sql)),
      commit: () => reaching(tx.commit()),
      rollback: () => reaching(tx.rollback()),
      close: () => tx.close(),
      get closed() {
        return tx.closed;
      },
    };
  }

  close(): void {
    this.#closed = true;
    this.#loaded.then((client) => client.close(), () => {});
  }
}
